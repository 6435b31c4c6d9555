"""HTML: the visible text only (scripts, styles and the like dropped), one unit per heading's section.

Each section is labelled with its heading path; the first <h1> (else <title>) is the document's title.
"""

from html.parser import HTMLParser

from documents.parsers.base import HeadingPath, Title, Unit
from documents.parsers.text import read_text

SKIP = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "head"}
BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "aside",
    "nav",
    "ul",
    "ol",
    "table",
    "blockquote",
    "pre",
    "form",
    "fieldset",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "hr",
    "address",
}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


class _TextParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections = []  # (heading, [pieces])
        self.heading, self.pieces = "", []
        self.skip_depth = 0
        self.in_heading = None
        self.heading_text = []
        self.title = []
        self.in_title = False
        self.path = HeadingPath()
        self.first_h1 = ""
        self.heading_only = None
        self.bare_headings = []

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in SKIP:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag in HEADINGS:
            self._flush()
            self.in_heading, self.heading_text = tag, []
        elif tag in BLOCK:
            self.pieces.append("\n\n")
        elif tag == "br":
            self.pieces.append("\n")
        elif tag == "li":
            self.pieces.append("\n- ")
        elif tag == "tr":
            self.pieces.append("\n")
        elif tag in {"td", "th"}:
            self.pieces.append(" | ")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag == self.in_heading:
            heading = " ".join("".join(self.heading_text).split())
            if tag == "h1" and not self.first_h1:
                self.first_h1 = heading
            self.path.enter(int(tag[1]), heading)
            self.heading = self.path.label
            self.pieces.append(heading + "\n\n")
            self.heading_only = heading
            self.in_heading = None
        elif tag in BLOCK:
            self.pieces.append("\n\n")

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
        if self.skip_depth:
            return
        if self.in_heading:
            self.heading_text.append(data)
        else:
            self.pieces.append(data)

    def _flush(self):
        text = _tidy("".join(self.pieces))
        # A heading with no text under it is no passage of its own (its words are in the next one's path).
        if text and text != self.heading_only:
            self.sections.append((self.heading, text))
        elif text:
            self.bare_headings.append((self.heading, text))
        self.pieces = []
        self.heading_only = None

    def close(self):
        super().close()
        self._flush()
        if not self.sections:  # a page of headings only still gives its words
            self.sections = self.bare_headings


def _tidy(text):
    lines = [" ".join(line.split()) for line in text.split("\n")]
    out, blank = [], False
    for line in lines:
        if not line or line in {"|", "-"}:
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        out.append(line.lstrip("| ").rstrip(" |") if line.startswith("|") else line)
    return "\n".join(out).strip()


def parse(path, limits, budget, report):
    report(0, 1)
    parser = _TextParser()
    parser.feed(read_text(path, limits, budget))
    parser.close()
    title = parser.first_h1 or " ".join("".join(parser.title).split())
    if title:
        yield Title(title)
    for heading, text in parser.sections:
        yield Unit(text, section=heading)
    report(1, 1)
