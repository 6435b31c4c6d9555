import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents.models import Chunk, Document
from documents.tests.conftest import pdf_bytes

pytestmark = pytest.mark.django_db


def test_home_lists_my_workspaces(client_for, member, workspace, other_workspace, ingest):
    from workspaces.models import Membership, Workspace

    second = Workspace.objects.create(name="Second Team", slug="second", created_by=member)
    Membership.objects.create(workspace=second, user=member, role="owner")
    ingest("handbook.pdf", pdf_bytes())
    response = client_for(member).get("/documents/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Acme Research" in page and "1 document" in page
    assert "Globex" not in page and "Second Team" in page


def test_home_goes_straight_to_the_only_workspace(client_for, member, workspace, other_workspace):
    response = client_for(member).get("/documents/")
    assert response.status_code == 302 and response["Location"] == "/documents/acme/"


def test_upload_page_stores_and_processes(client_for, member, workspace, run_tasks):
    client = client_for(member)
    files = [
        SimpleUploadedFile("handbook.pdf", pdf_bytes(), "application/pdf"),
        SimpleUploadedFile("notes.md", b"# Notes\n\nThe office opens at 8am.", "text/markdown"),
    ]
    with run_tasks():
        response = client.post("/documents/acme/upload/", {"files": files})
    assert response.status_code == 302
    assert response["Location"] == "/documents/acme/"
    documents = Document.objects.in_workspace(workspace).order_by("title")
    assert [(d.title, d.kind, d.status) for d in documents] == [
        ("Handbook", "pdf", "ready"),
        ("Notes", "markdown", "ready"),
    ]
    page = client.get(response["Location"]).content.decode()
    assert "Uploaded 2 files" in page and "Handbook" in page


def test_upload_json_answer_for_the_script(client_for, member, workspace):
    response = client_for(member).post(
        "/documents/acme/upload/",
        {"files": SimpleUploadedFile("a.txt", b"Some text here.")},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["errors"] == []
    assert body["documents"][0]["status"] == "queued"
    assert body["documents"][0]["status_url"].endswith("/status/")


def test_stored_under_a_generated_name(client_for, member, workspace):
    client_for(member).post("/documents/acme/upload/", {"files": SimpleUploadedFile("My Report (final).txt", b"Text.")})
    document = Document.objects.get()
    assert document.original_name == "My Report (final).txt"
    assert document.file.name.startswith(f"documents/{workspace.pk}/")
    assert "Report" not in document.file.name and document.file.name.endswith(".txt")


def test_detail_shows_status_preview_and_selected_chunk(client_for, viewer, ingest):
    document = ingest("handbook.pdf", pdf_bytes())
    chunk = document.chunks.get(page=2)
    response = client_for(viewer).get(f"/documents/acme/{document.pk}/?chunk={chunk.pk}")
    page = response.content.decode()
    assert response.status_code == 200
    assert f'id="chunk-{chunk.pk}" class="chunk chunk-selected"' in page
    assert "page 2" in page and "Text preview" in page and "3 passages indexed" in page
    # A viewer sees no edit buttons.
    assert "Re-process" not in page and "/delete/" not in page


def test_status_polls_while_active_and_refreshes_when_done(client_for, viewer, ingest):
    document = ingest("handbook.pdf", pdf_bytes())
    Document.objects.filter(pk=document.pk).update(status="processing", pages_done=1, pages_total=3)
    from django.utils import timezone

    Document.objects.filter(pk=document.pk).update(heartbeat_at=timezone.now())
    client = client_for(viewer)
    panel = client.get(f"/documents/acme/{document.pk}/status/?was=queued")
    assert 'hx-trigger="every 1s"' in panel.content.decode() and "Read 1 of 3 pages" in panel.content.decode()
    assert "HX-Refresh" not in panel
    Document.objects.filter(pk=document.pk).update(status="ready")
    done = client.get(f"/documents/acme/{document.pk}/status/?was=processing")
    assert "hx-trigger" not in done.content.decode()
    assert done["HX-Refresh"] == "true"
    as_json = client.get(f"/documents/acme/{document.pk}/status/", HTTP_ACCEPT="application/json").json()
    assert as_json["status"] == "ready" and as_json["chunk_count"] == 3


def test_download_is_an_attachment_never_sniffed(client_for, viewer, ingest):
    html = b"<html><body><script>alert(document.cookie)</script><p>Hello</p></body></html>"
    document = ingest("page.html", html)
    response = client_for(viewer).get(f"/documents/acme/{document.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert "page.html" in response["Content-Disposition"]
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == html
    # The script never reaches the passages either.
    assert "alert" not in "".join(document.chunks.values_list("text", flat=True))


def test_download_behind_nginx_is_sent_by_nginx(client_for, viewer, ingest, settings):
    document = ingest("page.html", b"<p>Hello</p>")
    settings.FILES_VIA_NGINX = True
    for url in (f"/documents/acme/{document.pk}/download/", f"/api/documents/{document.pk}/download/"):
        response = client_for(viewer).get(url)
        assert response.status_code == 200
        accel = response["X-Accel-Redirect"]
        assert accel.startswith("/_protected_media/") and accel.endswith(document.file.name.rsplit("/", 1)[-1])
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response.content == b""


def test_delete_removes_chunks_search_entries_and_file(client_for, member, ingest, django_capture_on_commit_callbacks):
    from documents.search import search_workspace

    document = ingest("handbook.pdf", pdf_bytes())
    storage, name = document.file.storage, document.file.name
    assert storage.exists(name) and search_workspace(document.workspace, "vacation")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(member).post(f"/documents/acme/{document.pk}/delete/")
    assert response.status_code == 302
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not Chunk.objects.filter(document_id=document.pk).exists()
    assert not storage.exists(name)
    assert search_workspace(document.workspace, "vacation") == []


def test_reprocess_and_cancel(client_for, member, ingest, run_tasks):
    document = ingest("handbook.pdf", pdf_bytes())
    client = client_for(member)
    with run_tasks():
        client.post(f"/documents/acme/{document.pk}/reprocess/")
    document.refresh_from_db()
    assert document.status == "ready" and document.version == 2
    Document.objects.filter(pk=document.pk).update(status="queued")
    client.post(f"/documents/acme/{document.pk}/cancel/")
    document.refresh_from_db()
    assert document.status == "failed" and document.failure_reason == "Cancelled by Mia Member."
    assert document.chunks.count() == 0


def test_list_filters_and_search_box(client_for, viewer, ingest):
    ingest("handbook.pdf", pdf_bytes())
    ingest("notes.md", b"# Notes\n\nLunch is at noon.")
    client = client_for(viewer)
    page = client.get("/documents/acme/?kind=pdf").content.decode()
    assert "handbook" in page and "notes.md" not in page
    page = client.get("/documents/acme/?q=note").content.decode()
    assert "notes" in page and "handbook.pdf" not in page
    page = client.get("/documents/acme/?status=failed").content.decode()
    assert "No documents match" in page
    assert client.get("/documents/acme/?status=nonsense").status_code == 200


def test_list_costs_the_same_queries_for_50_rows_as_for_2(client_for, viewer, workspace, django_assert_num_queries):
    from documents.tests.isolation_endpoints import _document

    client = client_for(viewer)
    for i in range(2):
        _document(workspace, f"doc-{i}", "ready")
    client.get("/documents/acme/")  # warm the session
    # user, memberships, workspace, count, the page of documents with the uploader joined
    # (the session comes from the cache)
    with django_assert_num_queries(5):
        client.get("/documents/acme/")
    for i in range(2, 50):
        _document(workspace, f"doc-{i}", "ready")
    with django_assert_num_queries(5):
        response = client.get("/documents/acme/?page=1")
    assert response.content.decode().count("<tr>") == 26  # header + 25 rows


def test_search_page_highlights_with_page_numbers(client_for, viewer, ingest):
    ingest("handbook.pdf", pdf_bytes())
    page = client_for(viewer).get("/documents/acme/search/", {"q": "reimbursed meals"}).content.decode()
    assert "<mark>" in page and "page 2" in page and "?chunk=" in page


def test_outsider_gets_404_and_viewer_403(client_for, outsider, viewer, ingest):
    document = ingest("handbook.pdf", pdf_bytes())
    assert client_for(outsider).get(f"/documents/acme/{document.pk}/").status_code == 404
    assert client_for(outsider).get("/documents/acme/").status_code == 404
    response = client_for(viewer).post(f"/documents/acme/{document.pk}/delete/")
    assert response.status_code == 403
    assert "member role" in response.content.decode()


def test_document_of_another_workspace_is_404_through_my_slug(client_for, outsider, other_workspace, ingest):
    document = ingest("handbook.pdf", pdf_bytes(), ws=other_workspace, user=outsider)
    assert client_for(outsider).get(f"/documents/globex/{document.pk}/").status_code == 200
    assert client_for(outsider).get(f"/documents/acme/{document.pk}/").status_code == 404


def test_members_rename_a_document_and_bad_titles_are_refused(client_for, member, viewer, workspace):
    from documents.tests.isolation_endpoints import _document

    document = _document(workspace, "handbook", "ready")
    url = f"/documents/acme/{document.pk}/rename/"
    assert client_for(viewer).post(url, {"title": "Mine"}).status_code == 403
    # Members rename what they uploaded; someone else's document is for admins and owners.
    assert client_for(member).post(url, {"title": "Mine"}).status_code == 403
    document.uploaded_by = member
    document.save(update_fields=["uploaded_by"])
    client = client_for(member)
    response = client.post(url, {"title": "  Employee   handbook 2026 "}, follow=True)
    assert response.status_code == 200 and "Renamed “handbook” to “Employee handbook 2026”" in response.content.decode()
    document.refresh_from_db()
    assert document.title == "Employee handbook 2026"
    page = client.post(url, {"title": "x" * 300}, follow=True).content.decode()
    assert "the limit is 255" in page and "x" * 300 in page  # what they typed is shown back
    document.refresh_from_db()
    assert document.title == "Employee handbook 2026"


def test_rename_through_the_api(api_client_for, member, workspace):
    from documents.tests.isolation_endpoints import _document

    document = _document(workspace, "handbook", "ready")
    client = api_client_for(member)
    response = client.patch(f"/api/documents/{document.pk}/", {"title": "Handbook 2026"}, format="json")
    assert response.status_code == 403  # someone else's document
    document.uploaded_by = member
    document.save(update_fields=["uploaded_by"])
    response = client.patch(f"/api/documents/{document.pk}/", {"title": "Handbook 2026"}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "Handbook 2026"
    response = client.patch(f"/api/documents/{document.pk}/", {"title": "   "}, format="json")
    assert response.status_code == 400 and "title" in response.json()


SNIPPET_MARKDOWN = """# Travel policy

## Hotel limits

Book through the **travel desk**; see the [booking guide](https://travel.example/guide).

| City | Hotel limit per night |
| --- | --- |
| Lisbon | 180 euros |
| Porto | 120 euros |
"""


def test_search_snippets_are_plain_text_with_the_heading_path_apart(
    client_for, viewer, ingest, django_assert_num_queries
):
    from documents.search import search

    ingest("travel.md", SNIPPET_MARKDOWN.encode())
    (result,) = search(viewer, "Lisbon hotel")
    snippet = str(result.snippet)
    for markup in ("**", "|", "](", "# ", "---"):
        assert markup not in snippet, markup
    assert not snippet.startswith("Hotel limits")  # the heading is shown apart, as the location
    assert result.location == "Hotel limits"
    assert "<mark>Lisbon</mark>" in snippet and "180 euros" in snippet
    (prose,) = search(viewer, "desk")
    assert str(prose.snippet).startswith("Book through the travel <mark>desk</mark>; see the booking guide")
    client = client_for(viewer)
    client.get("/documents/acme/search/", {"q": "Lisbon"})
    with django_assert_num_queries(5) as captured:
        page = client.get("/documents/acme/search/", {"q": "Lisbon hotel"}).content.decode()
    assert len(captured) == 5
    assert '<span class="badge">Hotel limits</span>' in page
    assert "**" not in page.split('class="snippet"')[1].split("</p>")[0]


def test_search_snippets_escape_everything_but_the_marks(ingest, viewer):
    from documents.search import search

    ingest("xss.md", b"# Notes\n\nThe <img src=x onerror=alert(1)> budget & <b>plan</b> for **travel**.\n")
    (result,) = search(viewer, "budget")
    snippet = str(result.snippet)
    assert "<img" not in snippet and "<b>" not in snippet
    assert "&lt;img" in snippet or "img" not in snippet
    assert "<mark>budget</mark>" in snippet and "&amp;" in snippet
