"""Split extracted text into overlapping passages on paragraph and sentence boundaries.

`chunk_units(units, size, overlap)` takes the parser's units (each with its
page or section) and returns `Piece`s: passages of at most about `size`
characters that never cross a page or section, each repeating up to
`overlap` characters of whole sentences from the end of the one before.
What is left of a section after a passage, when it is short (a quarter of
`size` at most), ends that passage: a passage of its own would hold its
closing lines after repeating the lines before them, and outrank the
passage that holds the whole fact.
`start`/`end` are offsets into the document's extracted text, which is the
units' texts joined by a blank line (`joined_text`).

Tables (rows written with pipes, as every parser writes them) stay whole in
a passage of their own; a table longer than `size` is split between rows,
and every part after the first starts with the table's header row again
when the header is short (up to `HEADER_SHARE` of `size`). A longer header
is given once, where it stands, and the table is cut as prose: repeated in
every part, it would make the passages many times longer than the text.
Whatever the input, the passages of one call hold at most
`MAX_EXPANSION` times its text; `chunk_units` raises `ParseError` before
going over.
"""

import re
from dataclasses import dataclass

from documents.parsers.base import ParseError

SEPARATOR = "\n\n"
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# Chinese and Japanese full stops end a sentence without a space after them.
SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+|(?<=[。！？])[\"')\]）」』]*|\n")
SOFT_BREAK = 0.7  # start a new passage at a paragraph once this full
# What is left of a section after a passage, up to this share of the size, ends that passage instead of
# starting one that would be mostly a repeat of its last lines.
TAIL = 0.25
TABLE_RULE = re.compile(r"^\s*(?:\|\s*)?:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*(?:\|\s*)?$")  # linear: no two \s* in turn
LINE = re.compile(r"[^\n]*\n?")
HEADER_SHARE = 0.3  # a table's header is repeated in each of its parts only when it is at most this share of the size
# The passages of a document hold at most this many times its text (overlaps and repeated table headers), plus
# one passage's worth.
MAX_EXPANSION = 3


@dataclass(frozen=True)
class Piece:
    text: str
    page: int | None
    section: str
    start: int
    end: int

    @property
    def token_estimate(self):
        return max(1, (len(self.text) + 3) // 4)


def joined_text(units):
    return SEPARATOR.join(unit.text for unit in units)


def _spans(text, pattern, start, end):
    """Sub-spans of text[start:end] split after each match of pattern."""
    position = start
    for match in pattern.finditer(text, start, end):
        if match.end() > position:
            yield position, match.end()
            position = match.end()
    if position < end:
        yield position, end


def _sentences(text, size):
    """(start, end, starts_paragraph) for each sentence, long ones cut at whitespace."""
    for p_start, p_end in _spans(text, PARAGRAPH_BREAK, 0, len(text)):
        first = True
        for s_start, s_end in _spans(text, SENTENCE_END, p_start, p_end):
            while s_end - s_start > size:
                cut = text.rfind(" ", s_start + size // 2, s_start + size)
                cut = cut + 1 if cut > s_start else s_start + size
                yield s_start, cut, first
                first = False
                s_start = cut
            if s_end > s_start:
                yield s_start, s_end, first
                first = False


def _chunk_text(text, size, overlap):
    """(start, end) passages of one unit's text."""
    sentences = list(_sentences(text, size))
    passages = []
    i = fresh = 0  # fresh: the first sentence that no passage holds yet
    while i < len(sentences):
        start = sentences[i][0]
        j = i
        while j + 1 < len(sentences):
            next_start, next_end, new_paragraph = sentences[j + 1]
            length = next_end - start
            if length > size:
                if sentences[-1][1] - sentences[j][1] <= size * TAIL:
                    j = len(sentences) - 1
                break
            if new_paragraph and j >= fresh and sentences[j][1] - start >= size * SOFT_BREAK:
                break
            j += 1
        passages.append((start, sentences[j][1]))
        if j + 1 >= len(sentences):
            break
        fresh = j + 1
        # Overlap: carry whole sentences from the end, within the overlap budget, and only as long as the next
        # sentence still fits after them: a passage of the overlap alone would add no text, and be carried again.
        k = fresh
        while (
            k - 1 > i
            and sentences[j][1] - sentences[k - 1][0] <= overlap
            and sentences[fresh][1] - sentences[k - 1][0] <= size
        ):
            k -= 1
        i = k
    return passages


def _is_row(line):
    line = line.strip()
    return line.startswith("|") or " | " in line


def _segments(text):
    """("prose" | "table", start, end) stretches of a unit's text; a table is two or more rows in a row."""
    lines = [(m.start(), m.end(), m.group()) for m in LINE.finditer(text) if m.group()]
    segments, i = [], 0
    prose_start = 0
    while i < len(lines):
        if not _is_row(lines[i][2]):
            i += 1
            continue
        j, rows = i, []
        while j < len(lines) and (_is_row(lines[j][2]) or not lines[j][2].strip()):
            if lines[j][2].strip():
                rows.append(j)
            j += 1
        if len(rows) >= 2:
            start, end = lines[i][0], lines[rows[-1]][1]
            if start > prose_start:
                segments.append(("prose", prose_start, start))
            segments.append(("table", start, end))
            prose_start = end
        i = max(j, i + 1)
    if prose_start < len(text):
        segments.append(("prose", prose_start, len(text)))
    return segments


def _table_parts(text, start, end, size):
    """(text, start, end) parts of a table: whole when it fits, else rows with the header repeated."""
    if end - start <= size:
        return [(text[start:end], start, end)]
    rows = [(m.start(), m.end()) for m in LINE.finditer(text, start, end) if m.group().strip()]
    header = rows[:2] if len(rows) > 1 and TABLE_RULE.match(text[rows[1][0] : rows[1][1]]) else rows[:1]
    head = "\n".join(text[a:b].strip() for a, b in header)
    if len(head) > size * HEADER_SHARE:
        # Given once where it stands: the table is cut between rows (and within a row too long) like prose.
        return [(text[start + a : start + b], start + a, start + b) for a, b in _chunk_text(text[start:end], size, 0)]
    parts, group = [], []
    for row in rows[len(header) :]:
        if group and len(head) + 1 + row[1] - group[0][0] > size:
            parts.append(group)
            group = []
        group.append(row)
    if group:
        parts.append(group)
    out = []
    for number, group in enumerate(parts):
        body = "\n".join(text[a:b].strip() for a, b in group)
        first = group[0][0] if number else start  # the first part holds the header where it stands
        out.append((f"{head}\n{body}", first, group[-1][1]))
    return out


def chunk_units(units, size=1200, overlap=200):
    pieces = []
    offset = 0
    allowed = MAX_EXPANSION * len(joined_text(units)) + size
    total = 0
    for unit in units:
        text = unit.text
        spans = []
        for kind, seg_start, seg_end in _segments(text):
            if kind == "table":
                spans.extend(_table_parts(text, seg_start, seg_end, size))
                continue
            segment = text[seg_start:seg_end]
            spans.extend((segment[a:b], seg_start + a, seg_start + b) for a, b in _chunk_text(segment, size, overlap))
        for body, start, end in spans:
            stripped = body.strip()
            if not stripped:
                continue
            total += len(stripped)
            if total > allowed:
                raise ParseError(
                    f"This file's text would make passages more than {MAX_EXPANSION} times its length "
                    "(a table or a layout that cannot be split sensibly), so it was not indexed."
                )
            if body != text[start:end]:  # a table's part with its header repeated: it spans its own rows
                pieces.append(Piece(stripped, unit.page, unit.section, offset + start, offset + end))
                continue
            lead = len(body) - len(body.lstrip())
            begin = offset + start + lead
            pieces.append(Piece(stripped, unit.page, unit.section, begin, begin + len(stripped)))
        offset += len(text) + len(SEPARATOR)
    return pieces
