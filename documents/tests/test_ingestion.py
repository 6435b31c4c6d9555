import pytest

from documents.models import Chunk, Document
from documents.tests.conftest import MARKDOWN, docx_bytes, pdf_bytes

pytestmark = pytest.mark.django_db


def test_pdf_becomes_ready_with_pages(ingest):
    document = ingest("handbook.pdf", pdf_bytes())
    assert document.status == "ready", document.failure_reason
    assert document.kind == "pdf"
    assert document.page_count == 3
    assert document.pages_done == document.pages_total == 3
    chunks = list(document.chunks.order_by("position"))
    assert [c.page for c in chunks] == [1, 2, 3]
    assert "27 vacation days" in chunks[0].text
    assert document.version == 1
    assert document.preview.startswith("Employee handbook")


def test_docx_sections_and_tables(ingest):
    document = ingest("travel.docx", docx_bytes())
    assert document.status == "ready", document.failure_reason
    chunks = list(document.chunks.order_by("position"))
    assert chunks[0].section == "Travel policy"
    assert chunks[-1].section == "Hotels"
    assert "Lisbon | 150 euros" in chunks[-1].text


def test_markdown_sections(ingest):
    document = ingest("it-faq.md", MARKDOWN.encode())
    assert document.status == "ready", document.failure_reason
    assert document.kind == "markdown"
    sections = list(document.chunks.values_list("section", flat=True))
    assert sections == ["IT FAQ", "VPN", "Printing"]
    vpn = document.chunks.get(section="VPN").text
    assert "staff account" in vpn and "**" not in vpn


def test_offsets_point_into_the_extracted_text(ingest):
    text = "\n\n".join(f"Paragraph {i}. " + "Some words here. " * 30 for i in range(40))
    document = ingest("long.txt", text.encode())
    assert document.status == "ready"
    chunks = list(Chunk.objects.filter(document=document).order_by("position"))
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.token_estimate > 0
    # Overlap: each passage starts before the previous one ends.
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))
    assert Document.objects.get(pk=document.pk).chunk_count == len(chunks)
