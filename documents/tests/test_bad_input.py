"""Every kind of bad upload: a clear message on the page, a 4xx JSON error in the API, nothing stored."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from documents.models import Document
from documents.tests.conftest import docx_bytes, pdf_bytes, zip_bomb_bytes

pytestmark = pytest.mark.django_db

ENCRYPTED = None


def encrypted_pdf():
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes()))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


REFUSED_AT_UPLOAD = [
    ("empty.txt", b"", 400, "The file is empty."),
    ("setup.pdf", b"MZ\x90\x00\x03" + b"\x00" * 200, 415, "Windows program"),
    ("report.pdf", b"Just some text pretending to be a PDF.", 415, "content is text, not a PDF"),
    ("letter.docx", b"Plain words, not a zip at all.", 415, "not a zip archive"),
    ("bomb.docx", zip_bomb_bytes(), 415, "zip bomb"),
    ("truncated.pdf", pdf_bytes()[:400], 415, "damaged or incomplete"),
    ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415, "PNG image"),
    ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, 415, "save it as .docx"),
    ("random.bin", bytes(range(256)) * 8, 415, "could not be recognised"),
]


@pytest.mark.parametrize("name, content, status, message", REFUSED_AT_UPLOAD, ids=[r[0] for r in REFUSED_AT_UPLOAD])
def test_refused_on_the_page(client_for, member, workspace, name, content, status, message):
    response = client_for(member).post("/documents/acme/upload/", {"files": SimpleUploadedFile(name, content)})
    assert response.status_code == status
    assert message in response.content.decode()
    assert 'class="form-errors"' in response.content.decode()
    assert not Document.objects.exists()


@pytest.mark.parametrize("name, content, status, message", REFUSED_AT_UPLOAD, ids=[r[0] for r in REFUSED_AT_UPLOAD])
def test_refused_by_the_api(api_client_for, member, workspace, name, content, status, message):
    response = api_client_for(member).post(
        "/api/documents/?workspace=acme", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )
    assert response.status_code == status
    body = response.json()
    assert message in body["detail"] and message in body["file"][0]
    assert not Document.objects.exists()


BAD_NAMES = [
    ("../../etc/passwd.txt", "parent folder"),
    ("..", "parent folder"),
    ("reports/q3.txt", "folder separators"),
    ("reports\\q3.txt", "folder separators"),
    ("bad\x07name.txt", "control characters"),
    ("line\nbreak.txt", "control characters"),
    ("x" * 296 + ".txt", "300 characters long; the limit is 255"),
]


def multipart_body(name, content=b"Some text.", field="files", boundary="XyZboundary"):
    """A raw multipart body: the test client would not send these names unchanged."""
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "name, message", BAD_NAMES, ids=["dotdot-path", "dotdot", "slash", "backslash", "bell", "newline", "300-chars"]
)
def test_bad_file_names_on_the_page(client_for, member, workspace, name, message):
    body, content_type = multipart_body(name)
    response = client_for(member).generic("POST", "/documents/acme/upload/", body, content_type=content_type)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    "name, message", BAD_NAMES, ids=["dotdot-path", "dotdot", "slash", "backslash", "bell", "newline", "300-chars"]
)
def test_bad_file_names_in_the_api(api_client_for, member, workspace, name, message):
    body, content_type = multipart_body(name, field="file")
    response = api_client_for(member).generic("POST", "/api/documents/?workspace=acme", body, content_type=content_type)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert response.json()["errors"][0]["code"] == "bad_name"
    assert not Document.objects.exists()


def test_a_file_name_too_long_for_the_parts_headers_says_so(client_for, api_client_for, member, workspace):
    """A name of a thousand characters overflows Django's 1 KB of part headers before its own check."""
    body, content_type = multipart_body("x" * 1100 + ".txt")
    page = client_for(member).generic("POST", "/documents/acme/upload/", body, content_type=content_type)
    assert page.status_code == 400 and "the limit is 255 characters" in page.content.decode()
    body, content_type = multipart_body("x" * 1100 + ".txt", field="file")
    api = api_client_for(member).generic("POST", "/api/documents/?workspace=acme", body, content_type=content_type)
    assert api.status_code == 400 and "the limit is 255 characters" in api.json()["detail"]
    assert not Document.objects.exists()


@override_settings(UPLOAD_MAX_BYTES=10 * 1024)
def test_over_the_size_limit_while_streaming(client_for, api_client_for, member, workspace):
    big = SimpleUploadedFile("big.txt", b"word " * 4000)  # 20 KB, within the body allowance
    response = client_for(member).post("/documents/acme/upload/", {"files": big})
    assert response.status_code == 413
    assert "larger than 10 KB" in response.content.decode()
    big.seek(0)
    response = api_client_for(member).post("/api/documents/?workspace=acme", {"file": big}, format="multipart")
    assert response.status_code == 413 and "larger than 10 KB" in response.json()["detail"]
    assert not Document.objects.exists()


@override_settings(UPLOAD_MAX_BYTES=1024)
def test_body_far_over_the_limit_is_refused_before_reading(client_for, api_client_for, member, workspace):
    class Unreadable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body was read")

    for client, path in [
        (client_for(member), "/documents/acme/upload/"),
        (api_client_for(member), "/api/documents/?workspace=acme"),
    ]:
        response = client.generic(
            "POST",
            path,
            b"--XyZ",
            content_type="multipart/form-data; boundary=XyZ",
            CONTENT_TYPE="multipart/form-data; boundary=XyZ",
            CONTENT_LENGTH=str(500 * 1024 * 1024),
            **{"wsgi.input": Unreadable()},
        )
        assert response.status_code == 413
        text = response.content.decode()
        assert "500 MB" in text and "the limit is 1 KB" in text


def test_thousands_of_parts_are_refused(client_for, api_client_for, member, workspace):
    files = [SimpleUploadedFile(f"f{i}.txt", b"x") for i in range(2000)]
    response = client_for(member).post("/documents/acme/upload/", {"files": files})
    assert response.status_code == 400
    assert "Too many files: at most 20 files per upload." in response.content.decode()
    fields = {f"field{i}": "x" for i in range(3000)}
    response = api_client_for(member).post("/api/documents/?workspace=acme", fields, format="multipart")
    assert response.status_code == 400
    assert response.json()["detail"] == "Too many form fields: at most 1000 per request."
    assert not Document.objects.exists()


def test_same_file_twice_in_one_workspace_is_reported(
    client_for, api_client_for, member, workspace, other_workspace, outsider
):
    content = pdf_bytes()
    client = client_for(member)
    assert client.post("/documents/acme/upload/", {"files": SimpleUploadedFile("a.pdf", content)}).status_code == 302
    response = client.post("/documents/acme/upload/", {"files": SimpleUploadedFile("copy.pdf", content)})
    assert response.status_code == 409
    assert "already in the workspace as “a”" in response.content.decode()
    response = api_client_for(member).post(
        "/api/documents/?workspace=acme", {"file": SimpleUploadedFile("again.pdf", content)}, format="multipart"
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["document"] == Document.objects.get().pk
    assert Document.objects.count() == 1
    # The same file in another workspace is an independent document.
    response = api_client_for(outsider).post(
        "/api/documents/?workspace=globex", {"file": SimpleUploadedFile("a.pdf", content)}, format="multipart"
    )
    assert response.status_code == 201
    assert Document.objects.count() == 2
    assert len(set(Document.objects.values_list("file", flat=True))) == 2


def test_failed_parsing_keeps_the_file_and_says_why(ingest):
    cases = [
        ("locked.pdf", encrypted_pdf(), "protected by a password"),
        ("garbage.pdf", b"%PDF-1.4\n" + b"\x00\xff garbage " * 200 + b"\n%%EOF\n", "damaged"),
        ("scan.pdf", pdf_bytes([[], []]), "No text could be found"),
    ]
    for name, content, reason in cases:
        document = ingest(name, content)
        assert document.status == "failed", name
        assert reason in document.failure_reason, document.failure_reason
        assert document.file.storage.exists(document.file.name)
        assert document.chunks.count() == 0


def test_page_and_character_limits(ingest, settings):
    settings.DOCUMENTS_MAX_PAGES = 2
    document = ingest("handbook.pdf", pdf_bytes())
    assert document.status == "failed"
    assert document.failure_reason == "This PDF has 3 pages; the limit is 2."
    settings.DOCUMENTS_MAX_CHARS = 1000
    document = ingest("long.txt", b"word " * 1000)
    assert document.status == "failed" and "more than 1,000 characters" in document.failure_reason


def test_time_limit(ingest, settings):
    settings.DOCUMENTS_PARSE_TIMEOUT = 0.001
    document = ingest("handbook.pdf", pdf_bytes([[f"Line {i}" for i in range(40)]] * 200))
    assert document.status == "failed"
    assert "took longer than 0.001 seconds" in document.failure_reason
    assert document.file.storage.exists(document.file.name)


def test_memory_limit(ingest, settings):
    settings.DOCUMENTS_PARSE_MEMORY_MB = 128
    # 40 MB of text in one CSV cell: the reader needs several times that.
    document = ingest("huge.csv", b"name,notes\nx," + b"a" * (40 * 1024 * 1024) + b"\n")
    assert document.status == "failed"
    assert "memory" in document.failure_reason or "could not be read" in document.failure_reason


def test_odd_encodings_are_read(ingest):
    utf16 = ingest("utf16.txt", "Le café est à gauche du bureau.".encode("utf-16"))
    assert utf16.status == "ready" and "café" in utf16.chunks.get().text
    cyrillic = "Отпуск составляет двадцать семь дней в году. Сотрудники могут перенести пять дней."
    legacy = ingest("ru.txt", cyrillic.encode("cp1251"))
    assert legacy.status == "ready", legacy.failure_reason
    assert "Отпуск" in legacy.chunks.get().text
    latin = ingest("latin1.md", "# Menü\n\nGrüße aus München, Straße 5.".encode("latin-1"))
    assert latin.status == "ready" and "München" in latin.chunks.get(section="Menü").text
    no_mark = ingest("utf16le.txt", "Le café est à gauche du bureau.".encode("utf-16-le"))
    assert no_mark.status == "ready", no_mark.failure_reason
    assert no_mark.chunks.get().text == "Le café est à gauche du bureau."
    western = ingest("cp1252.txt", "Naïve café, crème brûlée.".encode("cp1252"))
    assert western.chunks.get().text == "Naïve café, crème brûlée."


def test_docx_with_a_renamed_pdf_extension_is_a_mismatch(client_for, member, workspace):
    response = client_for(member).post(
        "/documents/acme/upload/", {"files": SimpleUploadedFile("travel.pdf", docx_bytes())}
    )
    assert response.status_code == 415
    assert "named .pdf but its content is a Word document" in response.content.decode()


def test_no_file_chosen(client_for, api_client_for, member, workspace):
    response = client_for(member).post("/documents/acme/upload/", {})
    assert response.status_code == 400 and "Choose at least one file" in response.content.decode()
    response = api_client_for(member).post("/api/documents/?workspace=acme", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()
    response = api_client_for(member).post("/api/documents/", {}, format="multipart")
    assert response.status_code == 400 and "workspace" in response.json()


@pytest.mark.parametrize("body", ["[1, 2]", "5", "null", '"acme"'])
def test_json_body_that_is_not_an_object(api_client_for, member, workspace, body):
    client = api_client_for(member)
    response = client.post("/api/documents/", body, content_type="application/json")
    assert response.status_code == 400 and "workspace" in response.json()
    response = client.post("/api/documents/?workspace=acme", body, content_type="application/json")
    assert response.status_code == 400 and "file" in response.json()
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("blank.txt", b"  \n\t\n   \n", "This file holds no text."),
        ("blank.md", b"\n\n   \n", "This file holds no text."),
        ("header.csv", b"employee,department,salary\n", "only a header row (employee, department, salary)"),
        ("scan.pdf", pdf_bytes([[], []]), "If it is a scan, it needs a text layer (OCR) first."),
    ],
)
def test_files_without_text_say_why(ingest, name, content, reason):
    document = ingest(name, content)
    assert document.status == "failed"
    assert reason in document.failure_reason
    if not name.endswith(".pdf"):
        assert "OCR" not in document.failure_reason  # only a PDF can be a scan


def test_a_csv_of_one_line_keeps_it_as_text(ingest):
    document = ingest("note.csv", b"just one line of text about budgets\n")
    assert document.status == "ready", document.failure_reason
    assert document.chunks.get().text == "just one line of text about budgets"
