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
