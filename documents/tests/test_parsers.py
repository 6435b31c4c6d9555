"""Readers of hostile or odd files: each keeps the text, in time, or says why it cannot."""

import signal
from contextlib import contextmanager

import pytest

from documents.parsers import markdown


@contextmanager
def time_limit(seconds):
    """Raise TimeoutError in this (the main) thread when the block runs longer than `seconds`; a regular
    expression's search is interrupted too."""

    def expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds} seconds")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_markdown_links_are_found_in_time_on_a_long_line_of_unclosed_ones():
    # Quadratic patterns take minutes on this 1.5 MB line (seconds on a tenth of it); linear ones milliseconds.
    line = "[a](b " * 250_000
    with time_limit(10):
        assert markdown.tidy(line) == line
        assert markdown.tidy("[" * 300_000 + "](" + "(b" * 100_000) == "[" * 300_000 + "](" + "(b" * 100_000
        assert (
            markdown.tidy(line + "[docs](https://x.example/a_(b) 'the title')")
            == line + "docs (https://x.example/a_(b))"
        )


@pytest.mark.parametrize(
    "line, tidied",
    [
        ("Use the [print portal](https://print.example) today.", "Use the print portal (https://print.example) today."),
        ('[t](u "title") and ![logo](x.png)', "t (u) and logo"),
        ("[w](https://en.wikipedia.org/wiki/A_(b)).", "w (https://en.wikipedia.org/wiki/A_(b))."),
        ("[![badge](b.svg)](https://ci.example)", "badge (https://ci.example)"),
        ("a [bracket] and (parentheses) alone", "a [bracket] and (parentheses) alone"),
    ],
)
def test_markdown_links_and_images_become_their_text(line, tidied):
    assert markdown.tidy(line) == tidied


def read(parser, tmp_path, content, name="file"):
    """(title, [(section, text)]) of a file read by a parser module."""
    from documents.parsers.base import Budget, Limits, Title

    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    limits = Limits()
    title, units = "", []
    for item in parser.parse(path, limits, Budget(limits), lambda done, total: None):
        if isinstance(item, Title):
            title = item.text
        else:
            units.append((item.section, item.text))
    return title, units


@pytest.mark.parametrize(
    "page, sections",
    [
        (  # </head> may be left out: the body's first element ends the head
            "<!DOCTYPE html><html><head><meta charset=utf-8><title>Canteen menu</title>"
            "<body><h1>Canteen</h1><p>Soup of the day costs 3 euros.</p></body></html>",
            [("Canteen", "Canteen\n\nSoup of the day costs 3 euros.")],
        ),
        (  # and so does text
            "<head><title>Menu</title>Soup costs 3 euros.<p>Bread is free.</p>",
            [("", "Soup costs 3 euros.\n\nBread is free.")],
        ),
        (  # a heading closed by another heading's end tag
            "<h1>Handbook</h1><h2>Overtime</h3><p>Overtime is paid at 150 percent.</p>"
            "<h2>Holidays</h2><p>There are 12 public holidays.</p>",
            [
                ("Handbook › Overtime", "Overtime\n\nOvertime is paid at 150 percent."),
                ("Handbook › Holidays", "Holidays\n\nThere are 12 public holidays."),
            ],
        ),
        (  # a heading never closed ends where a paragraph starts
            "<h1>Handbook<p>Employees receive a laptop allowance of 900 euros.</p>",
            [("Handbook", "Handbook\n\nEmployees receive a laptop allowance of 900 euros.")],
        ),
        (  # or at the next heading, or at the end of the page
            "<h1>Handbook<h2>Travel<div>Trains are booked in second class.</div>",
            [("Handbook › Travel", "Travel\n\nTrains are booked in second class.")],
        ),
        ("<h1><h2>" * 50_000 + "Deep text.", [("Deep text.", "Deep text.")]),
        ("<h1><div class=title>Handbook</div></h1><p>Laptops.</p>", [("Handbook", "Handbook\n\nLaptops.")]),
    ],
)
def test_html_text_is_kept_whatever_tags_are_left_open(tmp_path, page, sections):
    from documents.parsers import html

    assert read(html, tmp_path, page, "page.html")[1] == sections
