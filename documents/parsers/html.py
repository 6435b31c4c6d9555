"""HTML: the visible text only (scripts, styles and the like dropped), one unit per heading's section.

Each section is labelled with its heading path; the first <h1> (else <title>) is the document's title.
A page's navigation (`<nav>`, or an element marked `role="navigation"` or `role="search"`: menus,
sidebars of links to other pages, breadcrumbs, a search box) is left out: saved from a wiki or an
intranet, it repeats the site's menu in every page, and its links' titles would be searched and cited
as if they were what the page says.
"""

from html.parser import HTMLParser

from documents.parsers.base import HeadingPath, Title, Unit
from documents.parsers.text import read_text

SKIP = {"script", "style", "noscript", "template", "svg", "math", "iframe", "object"}
# What a <head> may hold; anything else (or text) starts the body, as `</head>` and `<body>` may be left out.
HEAD = {"head", "title", "meta", "link", "base", "style", "script", "noscript", "template"}
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
NAVIGATION_ROLES = {"navigation", "search"}
# Elements whose end tag HTML requires: a role on one of these has a known end (an <li> or a <p> may be
# left open, and would take the rest of the page with it).
CLOSED = {"nav", "div", "section", "header", "footer", "aside", "ul", "ol", "form", "table", "span", "menu"}


def _is_navigation(tag, attrs):
    return tag == "nav" or (
        tag in CLOSED and any(k == "role" and (v or "").strip().lower() in NAVIGATION_ROLES for k, v in attrs)
    )


class _TextParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections = []  # (heading, [pieces])
        self.heading, self.pieces = "", []
        self.skip_depth = 0
        self.in_head = False
        self.in_heading = None
        self.heading_text = []
        self.heading_has_words = False
        self.title = []
        self.in_title = False
        self.path = HeadingPath()
        self.first_h1 = ""
        self.heading_only = None
        self.bare_headings = []
        self.navigation = None  # [tag, how many of it are open] while inside a page's navigation

    def _in_navigation(self, tag, attrs, start):
        """True while inside a navigation element (its own start and end tags included)."""
        if self.navigation is None:
            if start and _is_navigation(tag, attrs):
                self.navigation = [tag, 1]
                return True
            return False
        if tag == self.navigation[0]:
            self.navigation[1] += 1 if start else -1
            if self.navigation[1] == 0:
                self.navigation = None
        return True

    def handle_startendtag(self, tag, attrs):
        if self.navigation is None and not _is_navigation(tag, attrs):  # an empty one (<nav/>) holds nothing
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag == "head":
            self.in_head = True
        elif self.in_head and tag not in HEAD and not self.skip_depth:
            self.in_head = False  # (what a <noscript> or <template> in the head holds does not end it)
        if self._in_navigation(tag, attrs, True):
            return
        if tag in SKIP:
            self.skip_depth += 1
            return
        if self.skip_depth or self.in_head:
            return
        # A heading's end tag may be missing or another heading's (<h2>…</h3>): another heading or a block
        # starting ends it, as does the end of the page (a block before any of its words, a <div>, may wrap them).
        if self.in_heading and (tag in HEADINGS or (tag in BLOCK and self.heading_has_words)):
            self._end_heading()
        if tag in HEADINGS:
            self._flush()
            self.in_heading, self.heading_text, self.heading_has_words = tag, [], False
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
        if tag == "head":
            self.in_head = False
            return
        if self.navigation is not None and self._in_navigation(tag, (), False):
            return
        if tag in SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth or self.in_head:
            return
        if self.in_heading and tag in HEADINGS:
            self._end_heading()
        elif tag in BLOCK:
            self.pieces.append("\n\n")

    def _end_heading(self):
        tag = self.in_heading
        heading = " ".join("".join(self.heading_text).split())
        if tag == "h1" and not self.first_h1:
            self.first_h1 = heading
        self.path.enter(int(tag[1]), heading)
        self.heading = self.path.label
        self.pieces.append(heading + "\n\n")
        self.heading_only = heading
        self.in_heading = None

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
        if self.in_head and not self.in_title and not self.skip_depth and data.strip():
            self.in_head = False  # text ends the head
        if self.skip_depth or self.in_head or self.navigation is not None:
            return
        if self.in_heading:
            self.heading_text.append(data)
            self.heading_has_words = self.heading_has_words or bool(data.strip())
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
        if self.in_heading:
            self._end_heading()
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
