"""Fixtures for the documents tests: sample files of every format and a helper to upload them."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents.pdfmake import make_pdf


def pdf_bytes(pages=None):
    pages = pages or [
        ["# Employee handbook", "", "Welcome to Brightwater. Staff get 27 vacation days a year."],
        ["## Expenses", "", "Meals are reimbursed up to 60 euros a day when travelling."],
        ["## Equipment", "", "Every laptop is encrypted and replaced after four years."],
    ]
    return make_pdf(pages, title="Handbook")


def docx_bytes(paragraphs=None):
    import docx

    document = docx.Document()
    document.add_heading("Travel policy", level=1)
    for text in paragraphs or ["Book flights through the travel desk at least 14 days ahead."]:
        document.add_paragraph(text)
    document.add_heading("Hotels", level=2)
    document.add_paragraph("Hotel rooms may cost at most 180 euros a night in capital cities.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "City", "Limit"
    table.cell(1, 0).text, table.cell(1, 1).text = "Lisbon", "150 euros"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bomb_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (300 * 1024 * 1024))
    return buffer.getvalue()


MARKDOWN = """# IT FAQ

## VPN

Install the BW-Connect client and sign in with your **staff account**.
The VPN gateway is vpn.brightwater.example.

## Printing

Printers are on every floor; use the [print portal](https://print.example) to release jobs.
"""


def upload(name, content, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """Run the tasks enqueued on commit (the test database never commits)."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


@pytest.fixture
def ingest(workspace, member, run_tasks):
    """Upload a file into the acme workspace as the member and process it; the refreshed document."""
    from documents.ingestion import accept_upload

    def make(name, content, ws=None, user=None):
        with run_tasks():
            document = accept_upload(ws or workspace, upload(name, content), user or member)
        document.refresh_from_db()
        return document

    return make


def remake_vec_table(table, options):
    """Make a SQLite vec0 table anew with other options (`float[256] …`), its rows copied over."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT chunk_id, workspace_id, document_id, embedding FROM {table}")
        rows = cursor.fetchall()
        cursor.execute(f"DROP TABLE {table}")
        cursor.execute(
            f"CREATE VIRTUAL TABLE {table} USING vec0(chunk_id integer primary key, workspace_id integer "
            f"partition key, document_id integer, embedding {options})"
        )
        cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)", rows)
