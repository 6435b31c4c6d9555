"""Split extracted text into overlapping passages on paragraph and sentence boundaries.

`chunk_units(units, size, overlap)` takes the parser's units (each with its
page or section) and returns `Piece`s: passages of at most about `size`
characters that never cross a page or section, each repeating up to
`overlap` characters of whole sentences from the end of the one before.
`start`/`end` are offsets into the document's extracted text, which is the
units' texts joined by a blank line (`joined_text`).
"""

import re
from dataclasses import dataclass

SEPARATOR = "\n\n"
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
SENTENCE_END = re.compile(r"(?<=[.!?…。])[\"')\]]*\s+|\n")
SOFT_BREAK = 0.7  # start a new passage at a paragraph once this full


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
    i = 0
    while i < len(sentences):
        start = sentences[i][0]
        j = i
        while j + 1 < len(sentences):
            next_start, next_end, new_paragraph = sentences[j + 1]
            length = next_end - start
            if length > size:
                break
            if new_paragraph and sentences[j][1] - start >= size * SOFT_BREAK:
                break
            j += 1
        passages.append((start, sentences[j][1]))
        if j + 1 >= len(sentences):
            break
        # Overlap: carry whole sentences from the end, within the overlap budget.
        k = j + 1
        while k - 1 > i and sentences[j][1] - sentences[k - 1][0] <= overlap:
            k -= 1
        i = k
    return passages


def chunk_units(units, size=1200, overlap=200):
    pieces = []
    offset = 0
    for unit in units:
        text = unit.text
        for start, end in _chunk_text(text, size, overlap):
            body = text[start:end]
            stripped = body.strip()
            if not stripped:
                continue
            lead = len(body) - len(body.lstrip())
            begin = offset + start + lead
            pieces.append(Piece(stripped, unit.page, unit.section, begin, begin + len(stripped)))
        offset += len(text) + len(SEPARATOR)
    return pieces
