"""DOCX: paragraphs and tables in reading order, one unit per heading's section."""

from documents.parsers.base import ParseError, Unit, check_archive


def _is_heading(paragraph):
    try:
        name = paragraph.style.name or ""
    except (AttributeError, KeyError, ValueError):
        return False
    return name.startswith("Heading") or name == "Title"


def parse(path, limits, budget, report):
    with open(path, "rb") as handle:
        names = check_archive(handle, limits)
    if "word/document.xml" not in names:
        raise ParseError("This file is a zip archive but not a Word document.")
    import docx
    from docx.table import Table

    try:
        document = docx.Document(path)
        blocks = list(document.iter_inner_content())
    except MemoryError:
        raise
    except Exception:
        raise ParseError("This Word document is damaged and could not be read.") from None
    total = len(blocks)
    report(0, total)
    section, lines = "", []
    for index, block in enumerate(blocks, 1):
        if isinstance(block, Table):
            for row in block.rows:
                cells = [cell.text.strip() for cell in row.cells]
                # Merged cells repeat; keep each value once per row.
                unique = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
                if unique:
                    lines.append(budget.take(" | ".join(unique)))
        else:
            text = block.text.strip()
            if text and _is_heading(block):
                if lines:
                    yield Unit("\n\n".join(lines), section=section)
                section, lines = text[:200], []
            if text:
                lines.append(budget.take(text))
        if index % 50 == 0 or index == total:
            report(index, total)
    if lines:
        yield Unit("\n\n".join(lines), section=section)
