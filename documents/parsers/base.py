"""What every parser shares: the unit of extracted text, limits and the error type.

Nothing here imports Django or a heavy library: this package runs in a
child process of the task worker (see sandbox.py) and the upload checks
import the archive limits from here in the web process.
"""

import zipfile
from dataclasses import dataclass


class ParseError(Exception):
    """The file cannot be read; the message is shown to people as the failure reason."""


@dataclass(frozen=True)
class Unit:
    """A stretch of extracted text and where it came from (a PDF page, a heading, rows of a table)."""

    text: str
    page: int | None = None
    section: str = ""


@dataclass(frozen=True)
class Title:
    """The document's own title (a Markdown H1, a DOCX title, PDF metadata), yielded at most once by a parser."""

    text: str


PATH_SEPARATOR = " › "
MAX_SECTION = 200


class HeadingPath:
    """The headings above the current text: `enter(level, text)` for each heading, `.label` for the section."""

    def __init__(self):
        self.stack = []  # (level, text)

    def enter(self, level, text):
        text = " ".join(text.split())
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        if text:
            self.stack.append((level, text))

    @property
    def label(self):
        """ "Benefits › Paid time off › Sabbatical"; the leading parts dropped to fit, the last one kept."""
        parts = [text for _, text in self.stack]
        label = PATH_SEPARATOR.join(parts)
        while len(label) > MAX_SECTION and len(parts) > 1:
            parts = parts[1:]
            label = "… › " + PATH_SEPARATOR.join(parts)
        return label[:MAX_SECTION]


@dataclass(frozen=True)
class Limits:
    max_pages: int = 2000
    max_chars: int = 20_000_000
    max_unzipped_bytes: int = 200 * 1024 * 1024
    max_zip_entries: int = 5000
    # A member that expands more than this many times is treated as a zip bomb.
    max_zip_ratio: int = 200


class Budget:
    """Counts extracted characters and stops a parser that goes over the limit."""

    def __init__(self, limits):
        self.limits = limits
        self.chars = 0

    def take(self, text):
        self.chars += len(text)
        if self.chars > self.limits.max_chars:
            raise ParseError(
                f"The file holds more than {self.limits.max_chars:,} characters of text, the most one document may have."
            )
        return text


def check_archive(fileobj, limits, what="Word document"):
    """Refuse a zip that is not one, or that would expand beyond the limits (a zip bomb)."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ParseError(f"This file is not a valid {what}: it is not a readable zip archive.") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_zip_entries:
            raise ParseError(
                f"This {what} holds {len(members):,} parts, more than the {limits.max_zip_entries:,} allowed."
            )
        total = 0
        for member in members:
            total += member.file_size
            compressed = max(member.compress_size, 1)
            if member.file_size > 1024 * 1024 and member.file_size / compressed > limits.max_zip_ratio:
                raise ParseError(f"This {what} expands to far more than its size (a zip bomb) and was refused.")
        if total > limits.max_unzipped_bytes:
            mb = limits.max_unzipped_bytes // (1024 * 1024)
            raise ParseError(f"This {what} expands to more than {mb} MB and was refused.")
        return [member.filename for member in members]


def clean(text):
    """Text without the characters that have no place in it: NUL (PostgreSQL refuses it) becomes a space, so the
    words either side stay apart; the search highlight markers are dropped."""
    return text.replace("\x00", " ").replace("\ue000", "").replace("\ue001", "")


def clean_line(text):
    """A title or a section name: `clean`, on one line with single spaces."""
    return " ".join(clean(text).split())
