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
    assert sections == ["IT FAQ › VPN", "IT FAQ › Printing"]  # the title alone is no passage
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


def test_a_heading_with_nothing_under_it_is_no_passage_of_its_own(ingest):
    markdown = ingest(
        "faq.md", b"# IT FAQ\n\n## VPN\n\nInstall the client.\n\n## Printing\n\n### Floors\n\nEvery floor.\n"
    )
    assert list(markdown.chunks.order_by("position").values_list("section", "text")) == [
        ("IT FAQ › VPN", "VPN\n\nInstall the client."),
        ("IT FAQ › Printing › Floors", "Floors\n\nEvery floor."),
    ]
    html = ingest("faq.html", b"<h1>IT FAQ</h1><h2>VPN</h2><p>Install the client.</p><h2>Empty</h2>")
    assert list(html.chunks.values_list("section", flat=True)) == ["IT FAQ › VPN"]
    # A file of one heading still gives its words.
    assert ingest("title.md", b"# Only a title\n").chunks.get().text == "Only a title"


def test_docx_title_from_its_core_properties_else_its_title_style(ingest):
    import io

    import docx

    document = docx.Document()
    document.core_properties.title = "Travel and expenses policy 2026"
    document.add_heading("Booking", level=1)
    document.add_paragraph("Book flights through the travel desk.")
    buffer = io.BytesIO()
    document.save(buffer)
    assert ingest("policy-v3-final.docx", buffer.getvalue()).title == "Travel and expenses policy 2026"

    document = docx.Document()
    document.add_heading("Security handbook", level=0)  # the Title style
    document.add_heading("Passwords", level=1)
    document.add_paragraph("Use the password manager.")
    buffer = io.BytesIO()
    document.save(buffer)
    titled = ingest("sec.docx", buffer.getvalue())
    assert titled.title == "Security handbook"
    assert list(titled.chunks.values_list("section", flat=True)) == ["Security handbook › Passwords"]


def test_pdf_without_a_metadata_title_is_named_after_its_file(ingest):
    from documents.pdfmake import make_pdf

    document = ingest("quarterly-report.pdf", make_pdf([["Revenue grew by 4 percent."]], title=""))
    assert document.status == "ready" and document.title == "quarterly-report"


def test_nul_characters_never_reach_the_database(ingest):
    # PostgreSQL refuses text with NUL in it: the document would fail on every attempt.
    markdown = ingest("nul.md", b"# Title\x00with nul\n\n## Sec\x00tion\n\nThe gym\x00opens at seven.\n")
    assert markdown.status == "ready", markdown.failure_reason
    assert markdown.title == "Title with nul"
    assert list(markdown.chunks.values_list("section", "text")) == [
        ("Title with nul › Sec tion", "Sec tion\n\nThe gym opens at seven.")
    ]
    html = ingest("nul.html", b"<h1>Hea\x00ding</h1><p>Lunch is at noon.</p>")
    assert html.status == "ready", html.failure_reason
    assert (html.title, html.chunks.get().section) == ("Hea ding", "Hea ding")
    from documents.pdfmake import make_pdf

    pdf = ingest("nul.pdf", make_pdf([["Parking is free for staff."]], title="Hand\x00book"))
    assert pdf.status == "ready", pdf.failure_reason
    assert "\x00" not in pdf.title and pdf.title.startswith("Hand")
