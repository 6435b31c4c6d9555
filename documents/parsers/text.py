"""Plain text, in whatever encoding it came: one unit per heading's section, labelled with its heading path.

Plain text has no markup for headings, so they are recognised as a reader
does: a line underlined (or over- and underlined) with a row of `=`, `-`, `~`
and the like (reStructuredText, Markdown's setext); a line in capitals; a
numbered line ("2. Scope", "1.2 Travel"); a short line standing alone
before a paragraph. Each such line must stand after a blank line; a
numbered list, a sentence and an indented line are never headings. Levels
follow the order in which each kind of heading first appears (as in
reStructuredText), a numbered heading's depth counts its numbers, and a
short line alone sits below every other kind. The first heading, when
nothing comes before it, is the document's title. Without any heading the
file is one unit (the chunker splits it).
"""

import re

from documents.parsers.base import HeadingPath, Title, Unit
from documents.parsers.encoding import decode

ADORNMENT = re.compile(r"^([=\-~^*#+`:'\"_.])\1{2,}[ \t]*$")  # one repeated character: linear
NUMBERED = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})\.?[ \t]+(\S.*)$")  # bounded repetitions: linear
MAX_HEADING = 80
MAX_SHORT_HEADING = 60
NOT_A_HEADING_END = tuple(".,;:!?")
LIST_ITEM = re.compile(r"^\s*(?:[-*•+]\s|\d{1,3}[.)]\s|[a-z][.)]\s)")
INLINE_LITERAL = re.compile(r"``([^`]+)``")  # reStructuredText ``literal``: its text
SHORT_LEVEL = 99  # a short line alone: below every other kind of heading


def read_text(path, limits, budget):
    with open(path, "rb") as handle:
        data = handle.read(limits.max_chars * 4 + 4)
    return budget.take(decode(data))


def _words(text):
    return len(text.split())


def _plain_heading(text, numbered=False):
    """Whether a stripped line reads as a heading's words: not a sentence, a list item or markup."""
    return (
        0 < len(text) <= MAX_HEADING
        and not text.endswith(NOT_A_HEADING_END)
        and not text.startswith("..")
        and (numbered or not LIST_ITEM.match(text))
        and any(ch.isalpha() for ch in text)
    )


def _capitals(text):
    letters = [ch for ch in text if ch.isalpha()]
    return len(letters) >= 3 and all(ch.isupper() for ch in letters) and not text[0].isdigit() and _words(text) <= 10


def _short(text):
    return len(text) <= MAX_SHORT_HEADING and _words(text) <= 8 and (text[0].isupper() or text[0].isdigit())


def _next_text(lines, index):
    """The first non-blank line at or after index (stripped), or ""."""
    for line in lines[index : index + 50]:
        if line.strip():
            return line
    return ""


def _adornment(line, at_least):
    match = ADORNMENT.match(line.strip()) if line[:1] not in (" ", "\t") else None
    return match.group(1) if match and len(line.strip()) >= at_least else ""


def headings(lines):
    """(start, end, style, text) for each heading: lines[start:end] are the heading's own lines."""
    found, index = [], 0
    while index < len(lines):
        line = lines[index]
        text = line.strip()
        after_blank = index == 0 or not lines[index - 1].strip()
        if not text or not after_blank:
            index += 1
            continue
        # Over- and underlined: ====== / Title / ======
        if index + 2 < len(lines) and ADORNMENT.match(text):
            title = lines[index + 1].strip()
            mark = _adornment(line, 3)
            if title and _plain_heading(title) and _adornment(lines[index + 2], 3) == mark:
                found.append((index, index + 3, ("over", mark), title))
                index += 3
                continue
        indented = line[:1] in (" ", "\t")
        # Underlined: Title / ----- (the underline at least half the title's length)
        if not indented and index + 1 < len(lines) and _plain_heading(text):
            mark = _adornment(lines[index + 1], max(3, len(text) // 2))
            if mark:
                found.append((index, index + 2, ("under", mark), text))
                index += 2
                continue
        ends_paragraph = index + 1 >= len(lines) or not lines[index + 1].strip()
        following = _next_text(lines, index + 1).strip()
        number = NUMBERED.match(text)
        if indented or not _plain_heading(text, numbered=bool(number)) or not following:
            index += 1
            continue
        if number:
            # "2. Scope" alone before its text; never an item of a numbered list.
            if ends_paragraph and not NUMBERED.match(following) and number.group(2)[:1].isupper():
                found.append((index, index + 1, ("number", number.group(1).count(".") + 1), text))
        elif _capitals(text):
            found.append((index, index + 1, ("capitals",), text))
        elif ends_paragraph and _short(text) and not (_plain_heading(following) and _short(following)):
            found.append((index, index + 1, ("short",), text))
        index += 1
    return found


def parse(path, limits, budget, report):
    report(0, 1)
    text = read_text(path, limits, budget)
    lines = text.splitlines()
    found = headings(lines)
    if not found:
        yield Unit(text)
        report(1, 1)
        return
    styles = []
    path_ = HeadingPath()
    if not "".join(lines[: found[0][0]]).strip() and found[0][2][0] in ("over", "under", "capitals"):
        yield Title(found[0][3])
    section, lead, position = "", [], 0
    for start, end, style, heading in found:
        body = lines[position:start]
        if "".join(body).strip():  # a heading with no text under it is no passage of its own
            yield Unit("\n".join(lead + body).strip(), section=section)
        if style[0] == "short":
            level = SHORT_LEVEL
        else:
            if style not in styles:
                styles.append(style)
            level = styles.index(style) + 1
        heading = INLINE_LITERAL.sub(r"\1", heading)
        path_.enter(level, heading)
        section, lead, position = path_.label, [heading], end
    body = lines[position:]
    if "".join(body).strip():
        yield Unit("\n".join(lead + body).strip(), section=section)
    report(1, 1)
