"""Plain text: the whole file as one unit (the chunker splits it), in whatever encoding it came."""

from documents.parsers.base import Unit
from documents.parsers.encoding import decode


def read_text(path, limits, budget):
    with open(path, "rb") as handle:
        data = handle.read(limits.max_chars * 4 + 4)
    return budget.take(decode(data))


def parse(path, limits, budget, report):
    report(0, 1)
    text = read_text(path, limits, budget)
    yield Unit(text)
    report(1, 1)
