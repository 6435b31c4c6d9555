"""Markdown: one unit per heading's section, with the heaviest markup removed."""

import re

from documents.parsers.base import Unit
from documents.parsers.text import read_text

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)[^)]*\)")
EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")


def tidy(line):
    line = IMAGE.sub(r"\1", line)
    line = LINK.sub(r"\1 (\2)", line)
    return EMPHASIS.sub(r"\2", line)


def parse(path, limits, budget, report):
    report(0, 1)
    text = read_text(path, limits, budget)
    section, lines, in_code = "", [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        match = None if in_code else HEADING.match(line)
        if match:
            if "".join(lines).strip():
                yield Unit("\n".join(lines).strip(), section=section)
            section = tidy(match.group(2))[:200]
            lines = [section]
            continue
        lines.append(line if in_code else tidy(line))
    if "".join(lines).strip():
        yield Unit("\n".join(lines).strip(), section=section)
    report(1, 1)
