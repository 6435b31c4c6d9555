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
    assert document.title == "Handbook"  # the PDF's metadata title, not the file name


def test_docx_sections_and_tables(ingest):
    document = ingest("travel.docx", docx_bytes())
    assert document.status == "ready", document.failure_reason
    chunks = list(document.chunks.order_by("position"))
    assert chunks[0].section == "Travel policy"
    assert chunks[-1].section == "Travel policy › Hotels"
    # No title in the core properties: the first heading names the document.
    assert document.title == "Travel policy"
    assert "Lisbon | 150 euros" in chunks[-1].text


def test_markdown_sections(ingest):
    document = ingest("it-faq.md", MARKDOWN.encode())
    assert document.status == "ready", document.failure_reason
    assert document.kind == "markdown"
    sections = list(document.chunks.values_list("section", flat=True))
    assert sections == ["IT FAQ", "IT FAQ › VPN", "IT FAQ › Printing"]
    vpn = document.chunks.get(section="IT FAQ › VPN").text
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


def test_markdown_heading_paths_and_title(ingest):
    text = (
        "# Benefits & Perks\n\nWhat we offer.\n\n## Paid time off\n\nVacation.\n\n### Sabbatical\n\n"
        "Every three years, six weeks.\n\n## Health\n\nInsurance.\n"
    )
    document = ingest("benefits-and-perks.md", text.encode())
    assert document.title == "Benefits & Perks"
    sections = list(document.chunks.order_by("position").values_list("section", flat=True))
    assert sections == [
        "Benefits & Perks",
        "Benefits & Perks › Paid time off",
        "Benefits & Perks › Paid time off › Sabbatical",
        "Benefits & Perks › Health",
    ]


def test_a_title_a_person_gave_is_kept(workspace, member, run_tasks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from documents.ingestion import accept_upload

    with run_tasks():
        document = accept_upload(
            workspace, SimpleUploadedFile("faq.md", b"# Heading title\n\nText."), member, title="My own name"
        )
    document.refresh_from_db()
    assert document.status == "ready" and document.title == "My own name"
