"""Parsers, one module per format, behind one interface.

Each module has `parse(path, limits, budget, report)`: a generator of
`Unit`s (text plus its page or section) that calls `report(done, total)`
as it goes and raises `ParseError` with a reason a person can read. They
run in a child process of the task worker with memory and time limits
(`sandbox.extract`), never in a web worker.
"""

from importlib import import_module

from documents.parsers.base import Budget, Limits, ParseError, Unit

MODULES = {
    "pdf": "documents.parsers.pdf",
    "docx": "documents.parsers.docx",
    "text": "documents.parsers.text",
    "markdown": "documents.parsers.markdown",
    "html": "documents.parsers.html",
    "csv": "documents.parsers.csv",
}

__all__ = ["Budget", "Limits", "ParseError", "Unit", "parser_for"]


def parser_for(kind):
    """The parse function of a document kind."""
    try:
        return import_module(MODULES[kind]).parse
    except KeyError:
        raise ParseError(f"There is no reader for {kind} files.") from None
