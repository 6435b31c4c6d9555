import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents.models import Document
from documents.tests.conftest import pdf_bytes

pytestmark = pytest.mark.django_db


def test_upload_list_detail_search_delete(api_client_for, member, workspace, run_tasks):
    client = api_client_for(member)
    with run_tasks():
        response = client.post(
            "/api/documents/?workspace=acme",
            {"file": [SimpleUploadedFile("handbook.pdf", pdf_bytes()), SimpleUploadedFile("n.txt", b"Lunch at noon.")]},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    created = response.json()["documents"]
    assert [d["original_name"] for d in created] == ["handbook.pdf", "n.txt"]
    pk = created[0]["id"]

    listing = client.get("/api/documents/", {"workspace": "acme", "kind": "pdf"}).json()
    assert listing["count"] == 1 and listing["results"][0]["status"] == "ready"
    detail = client.get(f"/api/documents/{pk}/").json()
    assert detail["page_count"] == 3 and detail["chunk_count"] == 3 and detail["workspace"] == "acme"
    assert detail["content_version"].endswith(".1") and "Employee handbook" in detail["preview"]
    chunks = client.get(f"/api/documents/{pk}/chunks/").json()
    assert [c["location"] for c in chunks["results"]] == ["page 1", "page 2", "page 3"]

    found = client.get("/api/documents/search/", {"q": "meals", "workspace": "acme"}).json()
    assert found["count"] == 1
    hit = found["results"][0]
    assert hit["document"] == {"id": pk, "title": "Handbook"} and hit["page"] == 2
    assert "<mark>Meals</mark>" in hit["snippet"] and hit["url"].startswith("http://testserver/documents/acme/")

    download = client.get(f"/api/documents/{pk}/download/")
    assert download["Content-Disposition"].startswith("attachment") and download["X-Content-Type-Options"] == "nosniff"

    assert client.delete(f"/api/documents/{pk}/").status_code == 204
    assert not Document.objects.filter(pk=pk).exists()


def test_reprocess_and_cancel(api_client_for, member, ingest):
    document = ingest("handbook.pdf", pdf_bytes())
    client = api_client_for(member)
    assert client.post(f"/api/documents/{document.pk}/cancel/").status_code == 409
    response = client.post(f"/api/documents/{document.pk}/reprocess/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert client.post(f"/api/documents/{document.pk}/reprocess/").status_code == 409
    response = client.post(f"/api/documents/{document.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "failed" and response.json()["failure_reason"] == "Cancelled by Mia Member."


def test_bad_parameters_are_field_errors(api_client_for, viewer, workspace):
    client = api_client_for(viewer)
    assert client.get("/api/documents/search/").json() == {"q": ["Give the words to search for."]}
    assert "limit" in client.get("/api/documents/search/", {"q": "x", "limit": "500"}).json()
    assert client.get("/api/documents/search/", {"q": "x", "limit": "ten"}).status_code == 400
    assert "status" in client.get("/api/documents/", {"status": "done"}).json()
    assert client.get("/api/documents/", {"workspace": "globex"}).status_code == 404


def test_list_query_count_does_not_grow(api_client_for, viewer, workspace, django_assert_num_queries):
    from documents.tests.isolation_endpoints import _document

    client = api_client_for(viewer)
    for i in range(50):
        _document(workspace, f"doc-{i}", "ready")
    # token, memberships, count, page of documents (workspace and uploader joined)
    with django_assert_num_queries(4):
        response = client.get("/api/documents/")
    assert response.json()["count"] == 50
