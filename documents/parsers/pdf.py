"""PDF: one unit per page, with pypdf; the title from the document's metadata."""

from documents.parsers.base import ParseError, Title, Unit


def parse(path, limits, budget, report):
    import pypdf
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = pypdf.PdfReader(path, strict=False)
        if reader.is_encrypted:
            # Many PDFs carry only an owner password; they open with an empty one.
            try:
                opened = reader.decrypt("")
            except (FileNotDecryptedError, NotImplementedError, ValueError, KeyError):
                opened = 0
            if not opened:
                raise ParseError("This PDF is protected by a password. Remove the password and upload it again.")
        total = len(reader.pages)
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError):
        raise ParseError("This PDF is damaged and could not be read.") from None
    if total == 0:
        raise ParseError("This PDF has no pages.")
    if total > limits.max_pages:
        raise ParseError(f"This PDF has {total:,} pages; the limit is {limits.max_pages:,}.")
    report(0, total)
    try:
        title = ((reader.metadata or {}).get("/Title") or "").strip()
    except Exception:  # damaged metadata only loses the title
        title = ""
    if title and isinstance(title, str):
        yield Title(title)
    for number in range(1, total + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except MemoryError:
            raise
        except Exception:  # one unreadable page should not lose the rest of the document
            text = ""
        yield Unit(budget.take(text), page=number)
        report(number, total)
