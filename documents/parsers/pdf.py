"""PDF: one unit per page, read with PDFium (pypdfium2); the title from the document's metadata.

Where the PDF has an outline (bookmarks), each page's section is the heading
path in force on it ("Handbook › Time off › Sick leave").

PDFium is C++: a file that makes it crash or run away only takes down the
parser's child process, whose limits (sandbox.py) turn that into a reason.
"""

from itertools import islice

from documents.parsers.base import HeadingPath, ParseError, Title, Unit

MAX_OUTLINE_ENTRIES = 5000
MAX_OUTLINE_DEPTH = 15
# PDFium's text: CR LF line ends, U+0002 for a hyphen it found at a line's end, U+FFFE for a soft one.
TEXT_FIXES = str.maketrans({"\r": None, "\x02": "-", "\ufffe": "-"})


def _bookmark_page(pdf, bookmark):
    """The 0-based page a bookmark opens, from its destination or its go-to action; None if neither."""
    import pypdfium2.raw as raw

    dest = raw.FPDFBookmark_GetDest(pdf, bookmark)
    if not dest:
        action = raw.FPDFBookmark_GetAction(bookmark)
        if action and raw.FPDFAction_GetType(action) == raw.PDFACTION_GOTO:
            dest = raw.FPDFAction_GetDest(pdf, action)
    if not dest:
        return None
    index = raw.FPDFDest_GetDestPageIndex(pdf, dest)
    return index if index >= 0 else None


def outline_starts(pdf):
    """{page index: [(level, title), …]} of the outline's entries, in order; {} without an outline."""
    starts = {}
    try:
        for bookmark in islice(pdf.get_toc(max_depth=MAX_OUTLINE_DEPTH), MAX_OUTLINE_ENTRIES):
            title = " ".join((bookmark.get_title() or "").split())
            page = _bookmark_page(pdf, bookmark)
            if page is not None and title:
                starts.setdefault(page, []).append((bookmark.level + 1, title))
    except Exception:  # noqa: BLE001 - a damaged outline only loses the headings
        return starts
    return starts


def _open(path):
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    try:
        # Many PDFs carry only an owner password (restrictions); PDFium opens them as they are.
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if exc.err_code == raw.FPDF_ERR_PASSWORD:
            raise ParseError("This PDF is protected by a password. Remove the password and upload it again.") from None
        if exc.err_code == raw.FPDF_ERR_SECURITY:
            raise ParseError("This PDF uses an encryption this reader does not support.") from None
        raise ParseError("This PDF is damaged and could not be read.") from None


def page_text(pdf, index):
    """The text of one page ('' for a page PDFium cannot read)."""
    page = textpage = None
    try:
        page = pdf[index]
        textpage = page.get_textpage()
        return textpage.get_text_range().translate(TEXT_FIXES)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - one unreadable page should not lose the rest of the document
        return ""
    finally:
        if textpage is not None:
            textpage.close()
        if page is not None:
            page.close()


def parse(path, limits, budget, report):
    pdf = _open(path)
    try:
        total = len(pdf)
        if total == 0:
            raise ParseError("This PDF has no pages.")
        if total > limits.max_pages:
            raise ParseError(f"This PDF has {total:,} pages; the limit is {limits.max_pages:,}.")
        report(0, total)
        try:
            title = " ".join((pdf.get_metadata_value("Title") or "").split())
        except Exception:  # noqa: BLE001 - damaged metadata only loses the title
            title = ""
        if title:
            yield Title(title)
        starts = outline_starts(pdf)
        path = HeadingPath()
        for number in range(1, total + 1):
            text = page_text(pdf, number - 1)
            for level, heading in starts.get(number - 1, ()):
                path.enter(level, heading)
            yield Unit(budget.take(text), page=number, section=path.label)
            report(number, total)
    finally:
        pdf.close()
