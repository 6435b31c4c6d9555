"""Decide a file's type from its content (magic bytes), with the name's extension as a tie-breaker.

`detect(fileobj, name, limits)` returns a `Kind` or raises `Unsupported`
with a message a person can read. It reads the first 64 KB, the last
2 KB, and for zip files the archive's table of contents; never the whole
file, so it is cheap enough for the web request.
"""

import os

from documents.models import Kind
from documents.parsers.base import ParseError, check_archive
from documents.parsers.encoding import detect_encoding

HEAD_BYTES = 64 * 1024

# Signatures of formats we do not read, so the message can name them.
KNOWN_BINARIES = [
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a program"),
    (b"\xca\xfe\xba\xbe", "a program"),
    (b"\xcf\xfa\xed\xfe", "a program"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a media file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc/.xls); save it as .docx"),
    (b"{\\rtf", "an RTF file; save it as .docx"),
    (b"OggS", "an audio file"),
    (b"ID3", "an audio file"),
    (b"\x00\x00\x00\x18ftyp", "a video file"),
    (b"\x00\x00\x00\x20ftyp", "a video file"),
    (b"%!PS", "a PostScript file"),
    (b"SQLite format 3\x00", "a database file"),
]

TEXT_EXTENSIONS = {
    ".md": Kind.MARKDOWN,
    ".markdown": Kind.MARKDOWN,
    ".csv": Kind.CSV,
    ".tsv": Kind.CSV,
    ".html": Kind.HTML,
    ".htm": Kind.HTML,
    ".xhtml": Kind.HTML,
}
# Extensions that promise a binary format: text content under them is a mismatch.
BINARY_EXTENSIONS = {
    ".pdf": Kind.PDF,
    ".docx": Kind.DOCX,
    ".doc": None,
    ".exe": None,
    ".dll": None,
    ".zip": None,
    ".xlsx": None,
    ".pptx": None,
    ".png": None,
    ".jpg": None,
    ".jpeg": None,
    ".gif": None,
}
LABELS = {
    Kind.PDF: "a PDF",
    Kind.DOCX: "a Word document",
    Kind.TEXT: "text",
    Kind.MARKDOWN: "Markdown",
    Kind.HTML: "HTML",
    Kind.CSV: "CSV",
}
SUPPORTED = "PDF, Word (.docx), plain text, Markdown, HTML and CSV files"


class Unsupported(Exception):
    """The file's type is unknown, unsupported or does not match its name."""


def _read_head_tail(fileobj):
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(0, os.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(max(0, size - 2048))
    tail = fileobj.read(2048)
    fileobj.seek(0)
    return head, tail


def _content_kind(fileobj, head, tail, limits):
    if head[:1024].find(b"%PDF-") != -1:
        if b"%%EOF" not in tail:
            raise Unsupported("This PDF is damaged or incomplete (it has no end-of-file marker).")
        return Kind.PDF
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            names = check_archive(fileobj, limits, what="Word document")
        except ParseError as exc:
            raise Unsupported(str(exc)) from None
        finally:
            fileobj.seek(0)
        if "word/document.xml" in names:
            return Kind.DOCX
        raise Unsupported(f"This zip archive is not a Word document. Supported: {SUPPORTED}.")
    for magic, label in KNOWN_BINARIES:
        if head.startswith(magic):
            raise Unsupported(f"This file is {label}, which cannot be read. Supported: {SUPPORTED}.")
    if detect_encoding(head) is None:
        raise Unsupported(f"The type of this file could not be recognised. Supported: {SUPPORTED}.")
    return Kind.TEXT


def detect(fileobj, name, limits):
    """The document kind of the file, from its content first and its name second."""
    head, tail = _read_head_tail(fileobj)
    extension = os.path.splitext(name)[1].lower()
    kind = _content_kind(fileobj, head, tail, limits)
    if kind == Kind.TEXT:
        if extension in BINARY_EXTENSIONS:
            promised = BINARY_EXTENSIONS[extension]
            what = LABELS[promised] if promised else f"a {extension} file"
            if promised == Kind.DOCX:
                raise Unsupported("This .docx file is not a Word document: it is not a zip archive.")
            raise Unsupported(f"The file is named {extension} but its content is text, not {what}.")
        if extension in TEXT_EXTENSIONS:
            return TEXT_EXTENSIONS[extension]
        lowered = head[:512].lstrip().lower()
        if lowered.startswith(b"<!doctype html") or lowered.startswith(b"<html"):
            return Kind.HTML
        return Kind.TEXT
    if extension in BINARY_EXTENSIONS and BINARY_EXTENSIONS[extension] != kind or extension in TEXT_EXTENSIONS:
        raise Unsupported(f"The file is named {extension} but its content is {LABELS[kind]}; rename it and try again.")
    return kind
