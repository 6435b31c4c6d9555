"""The PDF reader on real files made here: outlines of every form, passwords, broken and hostile files.

Each file is written by pypdf (or by hand) and read through the real path: the
upload checks, the parser's limited child process, chunking. A hostile file
ends as `failed` with a reason, or `ready` with what could be read; never a hang.
"""

import io

import pytest

from documents.tests.conftest import pdf_bytes

pytestmark = pytest.mark.django_db


def _writer():
    from pypdf import PdfReader, PdfWriter

    return PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes())))


def _bytes(writer):
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_outline_entries_by_destination_and_by_action(ingest):
    from pypdf.generic import NameObject

    writer = _writer()
    top = writer.add_outline_item(title="Handbook", page_number=0)
    writer.add_outline_item(title="Expenses", page_number=1, parent=top)  # a GoTo action, as pypdf writes it
    item = writer.add_outline_item(title="Equipment", page_number=2, parent=top).get_object()
    # The other form many tools write: the destination itself instead of an action.
    item[NameObject("/Dest")] = item.pop("/A")["/D"]
    document = ingest("outline-forms.pdf", _bytes(writer))
    assert document.status == "ready", document.failure_reason
    sections = list(document.chunks.order_by("position").values_list("page", "section"))
    assert sections == [(1, "Handbook"), (2, "Handbook › Expenses"), (3, "Handbook › Equipment")]


def test_an_outline_that_loops_back_on_itself_is_read_once(ingest):
    writer = _writer()
    first = writer.add_outline_item(title="Expenses", page_number=1)
    second = writer.add_outline_item(title="Equipment", page_number=2)
    from pypdf.generic import NameObject

    second.get_object()[NameObject("/Next")] = first  # a cycle: Equipment → Expenses → Equipment …
    document = ingest("loop.pdf", _bytes(writer))
    assert document.status == "ready", document.failure_reason
    assert list(document.chunks.order_by("position").values_list("section", flat=True)) == [
        "",
        "Expenses",
        "Equipment",
    ]


def test_a_pdf_with_only_an_owner_password_is_read(ingest):
    writer = _writer()
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="AES-128")
    document = ingest("restricted.pdf", _bytes(writer))
    assert document.status == "ready", document.failure_reason
    assert "27 vacation days" in document.chunks.get(page=1).text


def test_a_broken_page_loses_only_its_own_text(ingest):
    from documents.pdfmake import make_pdf

    content = make_pdf(
        [["First page: the canteen opens at eight."], ["SECOND"], ["Third page: parking is free."]],
        title="Broken",
        compress=False,
    )
    # The second page's stream becomes bytes that are not PDF drawing operators at all.
    start = content.index(b"(SECOND)")
    content = content[:start] + b"\xff\xfe[[[(" + content[start + 4 : start + 8] + content[start + 8 :]
    document = ingest("broken-page.pdf", content)
    assert document.status == "ready", document.failure_reason
    texts = dict(document.chunks.values_list("page", "text"))
    assert "canteen opens at eight" in texts[1] and "parking is free" in texts[3]


def test_deeply_nested_objects_do_not_bring_the_worker_down(ingest):
    nested = b"[" * 200_000 + b"]" * 200_000
    content = pdf_bytes().replace(b"/Producer (documents.pdfmake)", b"/Producer " + nested)
    document = ingest("nested.pdf", content)
    # PDFium either skips the bad value (the pages stay readable) or refuses the file with a reason.
    assert document.status in ("ready", "failed")
    if document.status == "failed":
        assert document.failure_reason.startswith(("This PDF", "The reader stopped"))
    else:
        assert document.page_count == 3


def test_a_pdf_whose_page_tree_points_at_itself_fails_with_a_reason(ingest):
    content = pdf_bytes()
    # The page tree's kids: the tree itself (object 2), a loop a naive reader never leaves.
    start = content.index(b"/Kids [")
    end = content.index(b"]", start)
    content = content[:start] + b"/Kids [2 0 R" + b" " * (end - start - len(b"/Kids [2 0 R")) + content[end:]
    document = ingest("loop-pages.pdf", content)
    assert document.status == "failed"
    # PDFium trusts the tree's page count and finds no page behind it: nothing to read, said so.
    assert document.failure_reason.startswith(("This PDF", "No text could be found in this file."))


def test_a_pdf_that_expands_past_the_memory_limit_fails_with_a_reason(ingest, settings):
    import zlib

    from documents.pdfmake import make_pdf

    content = make_pdf([["Page one."], ["PLACEHOLDER"]], title="Bomb", compress=False)
    # The second page's drawing: 100 MB of text operators squeezed into 0.7 MB.
    squeeze, line = zlib.compressobj(1), b"BT /F1 11 Tf 72 700 Td (" + b"A" * 1000 + b") Tj ET\n"
    block = line * 4000
    bomb = b"".join(squeeze.compress(block) for _ in range(25)) + squeeze.flush()
    middle = content.index(b"(PLACEHOLDER)")
    start, end = content.rindex(b"<< /Length", 0, middle), content.index(b"endstream", middle) + len(b"endstream")
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream"
    settings.DOCUMENTS_PARSE_MEMORY_MB = 128
    document = ingest("bomb.pdf", content[:start] + stream + content[end:])
    assert document.status == "failed"
    assert document.failure_reason.startswith(
        ("The reader crashed on this file", "Reading this file needed more than 128 MB", "The file holds more than")
    ), document.failure_reason
    assert document.file.storage.exists(document.file.name)
