"""DOCX: paragraphs and tables in reading order, one unit per heading's section, labelled with its heading path.

The title is the document's core property, else its Title-styled paragraph, else its first heading.
"""

from documents.parsers.base import HeadingPath, ParseError, Title, Unit, check_archive


def _heading_level(paragraph):
    """0 for the Title style, 1–9 for Heading 1–9, None for any other paragraph."""
    try:
        name = paragraph.style.name or ""
    except (AttributeError, KeyError, ValueError):
        return None
    if name == "Title":
        return 0
    if name.startswith("Heading"):
        digits = name[len("Heading") :].strip()
        return int(digits) if digits.isdigit() else 1
    return None


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
    try:
        title = (document.core_properties.title or "").strip()
    except Exception:  # a damaged core-properties part only loses the title
        title = ""
    if title:
        yield Title(title)
    path = HeadingPath()
    section, lines, heading, emitted = "", [], None, False
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
            level = _heading_level(block) if text else None
            if level is not None:
                if lines and (len(lines) > 1 or lines[0] != heading):  # not a heading alone
                    emitted = True
                    yield Unit("\n\n".join(lines), section=section)
                if not title:
                    title = text
                    yield Title(title)
                path.enter(level, text)
                section, lines, heading = path.label, [], text
            if text:
                lines.append(budget.take(text))
        if index % 50 == 0 or index == total:
            report(index, total)
    # The last section; a document of headings only still gives its words.
    if lines and (len(lines) > 1 or lines[0] != heading or not emitted):
        yield Unit("\n\n".join(lines), section=section)
