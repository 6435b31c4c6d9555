"""PDF: one unit per page, with pypdf; the title from the document's metadata.

Where the PDF has an outline (bookmarks), each page's section is the heading
path in force on it ("Handbook › Time off › Sick leave").
"""

from documents.parsers.base import HeadingPath, ParseError, Title, Unit

MAX_OUTLINE_ENTRIES = 5000


def outline_starts(reader):
    """{page index: [(level, title), …]} of the outline's entries, in order; {} without an outline."""
    starts, seen = {}, 0

    def walk(items, level):
        nonlocal seen
        for item in items:
            if seen >= MAX_OUTLINE_ENTRIES:
                return
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            seen += 1
            try:
                page = reader.get_destination_page_number(item)
                title = str(item.title or "").strip()
            except Exception:  # noqa: BLE001 - a broken bookmark only loses its heading
                continue
            if page is not None and page >= 0 and title:
                starts.setdefault(page, []).append((level, title))

    try:
        walk(reader.outline, 1)
    except Exception:  # noqa: BLE001 - a damaged outline only loses the headings
        return {}
    return starts


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
    starts = outline_starts(reader)
    path = HeadingPath()
    for number in range(1, total + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except MemoryError:
            raise
        except Exception:  # one unreadable page should not lose the rest of the document
            text = ""
        for level, heading in starts.get(number - 1, ()):
            path.enter(level, heading)
        yield Unit(budget.take(text), page=number, section=path.label)
        report(number, total)
