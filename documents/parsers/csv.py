"""CSV: rows kept readable as "Header: value; Header: value", in blocks of rows.

A quote left open runs to the end of the file, taking every row after it into one cell: the rows from
its record on are read again with quotes as plain characters. With more than the field size limit after
it, the first reading stops at the limit; that is told apart from a quoted field truly that long (which is
refused) by reading on to the end without the limit.
"""

import csv
import io
from contextlib import contextmanager

from documents.parsers.base import ParseError, Unit
from documents.parsers.text import read_text

ROWS_PER_UNIT = 25


def parse(path, limits, budget, report):
    report(0, 1)
    text = read_text(path, limits, budget)
    try:
        dialect = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = _records(text, dialect)
    try:
        header = [h.strip() for h in next(reader, [])]
        block, first = [], 2
        for number, row in enumerate(reader, 2):
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            parts = []
            for i, cell in enumerate(cells):
                if not cell:
                    continue
                name = header[i] if i < len(header) and header[i] else f"column {i + 1}"
                parts.append(f"{name}: {cell}")
            if not block:
                first = number
            block.append("; ".join(parts))
            if len(block) >= ROWS_PER_UNIT:
                yield Unit("\n".join(block), section=_rows(first, number))
                block = []
            last = number
        if block:
            yield Unit("\n".join(block), section=_rows(first, last))
        elif len([name for name in header if name]) > 1:
            names = ", ".join(name for name in header if name)
            raise ParseError(f"This CSV file has only a header row ({names[:200]}), no rows of data.")
        elif any(header):  # one line of one field: text, not a header
            yield Unit(" ".join(header), section=_rows(1, 1))
    except csv.Error as exc:
        raise ParseError(f"This CSV file could not be read: {exc}.") from None
    report(1, 1)


def _records(text, dialect):
    """The file's records, each a list of cells; see the module's docstring for a quote left open."""
    lines = io.StringIO(text).readlines()
    reader = csv.reader(lines, dialect)
    held, held_from, read = None, 0, 0
    try:
        for record in reader:  # one behind, as the last may have to be read again
            if held is not None:
                yield held
            held, held_from, read = record, read, reader.line_num
    except csv.Error as exc:
        # The record after the held one (from line `read`) has a field over the limit: a quote left open?
        if "field larger than field limit" not in str(exc) or not _quote_left_open(lines[read:], dialect):
            raise
        if held is not None:
            yield held
        yield from csv.reader(lines[read:], dialect, quoting=csv.QUOTE_NONE)
        return
    if held is None:
        return
    if read - held_from > 1 and _quote_left_open(lines[held_from:], dialect):
        yield from csv.reader(lines[held_from:], dialect, quoting=csv.QUOTE_NONE)
    else:
        yield held


def _quote_left_open(lines, dialect):
    """Whether the record of these lines (the file's last) ends inside a quoted field."""
    try:
        with _field_limit(sum(map(len, lines)) + 1):
            for _ in csv.reader(lines, dialect, strict=True):
                pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


@contextmanager
def _field_limit(size):
    """The csv module's field size limit (one for the whole process) raised to `size` for a while."""
    previous = csv.field_size_limit()
    csv.field_size_limit(max(size, previous))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _rows(first, last):
    return f"row {first}" if first == last else f"rows {first}–{last}"
