"""Markdown: one unit per heading's section, labelled with its heading path, the heaviest markup removed.

The first level-1 heading (or a `title:` in front matter) is the document's title.
"""

import re

from documents.parsers.base import HeadingPath, Title, Unit
from documents.parsers.text import read_text

HEADING = re.compile(r"^(#{1,6})\s+(.+)$")  # linear; closing hashes are stripped in Python
FENCE = re.compile(r"^\s*(```|~~~)")
# Linear: a bracket's text stops at the next bracket and a link's target (with one pair of parentheses in it at
# most, as in Wikipedia's addresses) at the next parenthesis, so failed tries never scan the same characters
# again, and the target and its title cannot trade characters.
IMAGE = re.compile(r"!\[([^\[\]]*)\]\([^()]*\)")
LINK = re.compile(r"\[([^\[\]]+)\]\(((?:[^()\s]|\([^()\s]*\))+)(?:\s[^()]*)?\)")
EMPHASIS = re.compile(r"(\*\*|__)(?=\S)((?:(?!\1).)+?)(?<=\S)\1")  # never across its own marker: linear
FRONT_MATTER_TITLE = re.compile(r"^title:\s*[\"']?(.+?)[\"']?\s*$", re.IGNORECASE)


def closed_heading(text):
    """A heading's text without its closing hashes ("Title ##" -> "Title")."""
    return (text.rstrip().rstrip("#").rstrip() or text[:1]).strip()


def tidy(line):
    line = IMAGE.sub(r"\1", line)
    line = LINK.sub(r"\1 (\2)", line)
    return EMPHASIS.sub(r"\2", line)


def heading_text(text):
    """A heading as plain words: links and emphasis reduced to their text."""
    return LINK.sub(r"\1", IMAGE.sub(r"\1", EMPHASIS.sub(r"\2", text))).strip()


def _front_matter(lines):
    """(title, lines after the front matter) for a file that opens with a `---` block."""
    if not lines or lines[0].strip() != "---":
        return "", lines
    for index in range(1, min(len(lines), 100)):
        if lines[index].strip() in {"---", "..."}:
            title = ""
            for line in lines[1:index]:
                match = FRONT_MATTER_TITLE.match(line.strip())
                if match:
                    title = match.group(1)
            return title, lines[index + 1 :]
    return "", lines


def parse(path, limits, budget, report):
    report(0, 1)
    text = read_text(path, limits, budget)
    title, lines_in = _front_matter(text.splitlines())
    if title:
        yield Title(title)
    path_ = HeadingPath()
    section, lines, in_code, has_body, emitted = "", [], False, False, False
    for line in lines_in:
        if FENCE.match(line):
            in_code = not in_code
            continue
        match = None if in_code else HEADING.match(line)
        if match:
            if has_body:
                emitted = True
                yield Unit("\n".join(lines).strip(), section=section)
            heading = heading_text(closed_heading(match.group(2)))
            level = len(match.group(1))
            if level == 1 and not title and heading:
                title = heading
                yield Title(title)
            path_.enter(level, heading)
            section = path_.label
            lines, has_body = [heading], False  # a heading with no text under it is no passage of its own
            continue
        lines.append(line if in_code else tidy(line))
        has_body = has_body or bool(line.strip())
    # The last section; a file of headings only still gives its words.
    if has_body or (not emitted and "".join(lines).strip()):
        yield Unit("\n".join(lines).strip(), section=section)
    report(1, 1)
