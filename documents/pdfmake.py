"""A tiny PDF writer: pages of plain text in Helvetica.

Enough for the demo handbook, the tests and the benchmark to make real
PDFs that PDF readers read back, without a PDF library as a dependency.

    pdf_bytes = make_pdf([["Title", "", "First line", ...], [...page 2...]], title="Handbook")
"""

import zlib

PAGE_WIDTH, PAGE_HEIGHT = 612, 792
MARGIN = 72
LEADING = 15


def _escape(text):
    text = text.encode("cp1252", errors="replace").decode("latin-1")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _page_stream(lines):
    out = ["BT", f"{MARGIN} {PAGE_HEIGHT - MARGIN} Td", f"{LEADING} TL"]
    for line in lines:
        size = 11
        if line.startswith("# "):
            line, size = line[2:], 18
        elif line.startswith("## "):
            line, size = line[3:], 14
        out.append(f"/F1 {size} Tf ({_escape(line)}) Tj T*")
    out.append("ET")
    return "\n".join(out).encode("latin-1")


def make_pdf(pages, title="", compress=True):
    """PDF bytes with one page per list of lines ("# " and "## " lines are set larger)."""
    objects = []  # bytes of each object, numbered from 1

    def add(body):
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pages_id = add(b"")  # filled in below
    page_ids = []
    for lines in pages:
        stream = _page_stream(lines)
        if compress:
            stream = zlib.compress(stream)
            content = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
        else:
            content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_id, PAGE_WIDTH, PAGE_HEIGHT, content, font)
            )
        )
    kids = b" ".join(b"%d 0 R" % pid for pid in page_ids)
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    info = add(b"<< /Title (%s) /Producer (documents.pdfmake) >>" % _escape(title).encode("latin-1"))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        catalog,
        info,
        xref,
    )
    return bytes(out)


def wrap(text, width=90):
    """Lines of at most `width` characters, broken at spaces; blank lines kept."""
    lines = []
    for paragraph in text.split("\n"):
        words, line = paragraph.split(), ""
        if not words:
            lines.append("")
            continue
        for word in words:
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines
