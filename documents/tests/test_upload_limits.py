"""Django's body limits on the upload page and the upload API, with CSRF checks on.

The CSRF check reads the body for the form's token, so a body that Django
refuses while reading it (too many files, too many fields, fields too large)
must be explained before that check, or it ends as a bare "Bad request".
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from documents.models import Document

UPLOAD = "/documents/acme/upload/"
API_UPLOAD = "/api/documents/?workspace=acme"


def files(count):
    return [SimpleUploadedFile(f"note-{i}.txt", f"Note number {i}.".encode(), "text/plain") for i in range(count)]


@pytest.fixture
def browser(member, workspace):
    """A signed-in client that checks CSRF like a browser's requests are checked, and its token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.get(UPLOAD).status_code == 200
    return client, client.cookies["csrftoken"].value


def refusal_on_page(response, status):
    assert response.status_code == status
    page = response.content.decode()
    assert 'class="form-errors"' in page and "Upload files" in page  # the upload page, not the bare error page
    return page


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=3)
def test_too_many_files_on_the_page_names_the_limit(browser):
    client, token = browser
    response = client.post(UPLOAD, {"files": files(4), "csrfmiddlewaretoken": token})
    assert "at most 3 files per upload" in refusal_on_page(response, 400)
    assert not Document.objects.exists()


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=3)
def test_too_many_files_for_the_page_script_is_json(browser):
    client, token = browser
    response = client.post(UPLOAD, {"files": files(4), "csrfmiddlewaretoken": token}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    body = response.json()
    assert "at most 3 files per upload" in body["detail"]
    assert body["errors"] == [{"name": "", "detail": body["detail"], "code": "too_many_files"}]
    assert not Document.objects.exists()


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_too_many_fields_on_the_page_names_the_limit(browser):
    client, token = browser
    data = {f"extra{i}": "x" for i in range(6)}
    response = client.post(UPLOAD, {**data, "files": files(1), "csrfmiddlewaretoken": token})
    assert "at most 5 per request" in refusal_on_page(response, 400)
    assert not Document.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversized_form_fields_on_the_page_are_a_413_naming_the_limit(browser):
    client, token = browser
    response = client.post(UPLOAD, {"note": "x" * 4096, "files": files(1), "csrfmiddlewaretoken": token})
    assert "at most 1 KB" in refusal_on_page(response, 413)
    assert not Document.objects.exists()


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=3)
def test_an_upload_within_the_limits_still_needs_the_csrf_token(browser):
    client, token = browser
    refused = client.post(UPLOAD, {"files": files(3)})
    assert refused.status_code == 403 and b"This form has expired" in refused.content
    assert not Document.objects.exists()
    accepted = client.post(UPLOAD, {"files": files(3), "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert Document.objects.count() == 3


@override_settings(DATA_UPLOAD_MAX_NUMBER_FILES=3)
def test_too_many_files_through_the_api_with_session_auth(browser):
    client, token = browser
    response = client.post(API_UPLOAD, {"file": files(4)}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    body = response.json()
    assert "at most 3 files per upload" in body["detail"]
    assert body["file"] == [body["detail"]]
    assert not Document.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024, DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_body_limits_through_the_api_with_a_token(api_client_for, member, workspace):
    api = api_client_for(member)
    response = api.post(API_UPLOAD, {"note": "x" * 4096, "file": files(1)}, format="multipart")
    assert response.status_code == 413 and "at most 1 KB" in response.json()["detail"]
    fields = {f"extra{i}": "x" for i in range(6)}
    response = api.post(API_UPLOAD, {**fields, "file": files(1)}, format="multipart")
    assert response.status_code == 400 and "at most 5 per request" in response.json()["detail"]
    assert not Document.objects.exists()
