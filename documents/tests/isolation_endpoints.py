"""Every documents page and API endpoint, for the isolation suite (workspaces/tests/test_isolation.py)."""

import hashlib

from django.core.files.base import ContentFile

from documents.models import Chunk, Document
from workspaces.tests.isolation import Endpoint, Exempt


def _document(workspace, name, status, text="Staff get 27 vacation days a year.", uploaded_by=None):
    document = Document(
        uploaded_by=uploaded_by,
        workspace=workspace,
        title=name,
        original_name=f"{name}.txt",
        kind="text",
        content_type="text/plain",
        size=len(text),
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        status=status,
        chunk_count=1,
    )
    document.file.save(f"{name}.txt", ContentFile(text.encode()), save=False)
    document.save()
    Chunk.objects.create(
        document=document, workspace=workspace, position=0, text=text, start=0, end=len(text), token_estimate=9
    )
    return document


def setup(ctx):
    # Uploaded by someone else than every persona: only admins and owners may change them.
    ctx.document = _document(ctx.workspace, "handbook", "ready")
    ctx.active = _document(ctx.workspace, "running", "processing")
    # Each persona's own uploads (the outsider's too, in acme, which they cannot reach): members change theirs.
    ctx.own_documents = {
        name: (
            _document(ctx.workspace, f"own-{name}", "ready", uploaded_by=user),
            _document(ctx.workspace, f"own-active-{name}", "processing", uploaded_by=user),
        )
        for name, user in ctx.users.items()
    }


def own(ctx, suffix=""):
    """A page of the document the persona asking uploaded; the suite sets ctx.persona before each try."""
    return f"/documents/acme/{ctx.own_documents[ctx.persona][0].pk}/{suffix}"


def own_active(ctx, suffix=""):
    return f"/documents/acme/{ctx.own_documents[ctx.persona][1].pk}/{suffix}"


def _file(ctx):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"files": SimpleUploadedFile("notes.txt", b"Notes about the quarterly plan.", "text/plain")}


def _api_file(ctx):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"file": SimpleUploadedFile("notes.txt", b"Notes about the quarterly plan.", "text/plain")}


def doc(ctx, suffix=""):
    return f"/documents/acme/{ctx.document.pk}/{suffix}"


def api(ctx, suffix=""):
    return f"/api/documents/{ctx.document.pk}/{suffix}"


ENDPOINTS = [
    Endpoint("document list page", "GET", lambda ctx: "/documents/acme/", "viewer"),
    Endpoint("document list rows (polling)", "GET", lambda ctx: "/documents/acme/?partial=rows", "viewer"),
    Endpoint("upload page", "GET", lambda ctx: "/documents/acme/upload/", "member"),
    Endpoint(
        "upload files",
        "POST",
        lambda ctx: "/documents/acme/upload/",
        "member",
        data=_file,
        redirect=lambda ctx: "/documents/acme/",
    ),
    Endpoint("search page", "GET", lambda ctx: "/documents/acme/search/", "viewer", data=lambda ctx: {"q": "vacation"}),
    Endpoint("document page", "GET", doc, "viewer"),
    Endpoint("document status", "GET", lambda ctx: doc(ctx, "status/"), "viewer"),
    Endpoint("document download", "GET", lambda ctx: doc(ctx, "download/"), "viewer"),
    # Someone else's document: admins and owners only.
    Endpoint("delete confirmation", "GET", lambda ctx: doc(ctx, "delete/"), "admin"),
    Endpoint(
        "delete document", "POST", lambda ctx: doc(ctx, "delete/"), "admin", redirect=lambda ctx: "/documents/acme/"
    ),
    Endpoint("re-process document", "POST", lambda ctx: doc(ctx, "reprocess/"), "admin", redirect=doc),
    Endpoint(
        "rename document",
        "POST",
        lambda ctx: doc(ctx, "rename/"),
        "admin",
        data=lambda ctx: {"title": "Renamed"},
        redirect=doc,
    ),
    Endpoint(
        "cancel processing",
        "POST",
        lambda ctx: f"/documents/acme/{ctx.active.pk}/cancel/",
        "admin",
        redirect=lambda ctx: f"/documents/acme/{ctx.active.pk}/",
    ),
    # The persona's own document: members too.
    Endpoint("delete confirmation of own document", "GET", lambda ctx: own(ctx, "delete/"), "member"),
    Endpoint(
        "delete own document",
        "POST",
        lambda ctx: own(ctx, "delete/"),
        "member",
        redirect=lambda ctx: "/documents/acme/",
    ),
    Endpoint("re-process own document", "POST", lambda ctx: own(ctx, "reprocess/"), "member", redirect=own),
    Endpoint(
        "cancel processing own document",
        "POST",
        lambda ctx: own_active(ctx, "cancel/"),
        "member",
        redirect=own_active,
    ),
    Endpoint(
        "document list (API)",
        "GET",
        lambda ctx: "/api/documents/",
        "viewer",
        api=True,
        data=lambda ctx: {"workspace": "acme"},
    ),
    Endpoint(
        "upload (API)",
        "POST",
        lambda ctx: "/api/documents/?workspace=acme",
        "member",
        api=True,
        format="multipart",
        data=_api_file,
    ),
    Endpoint("document detail (API)", "GET", api, "viewer", api=True),
    Endpoint("document passages (API)", "GET", lambda ctx: api(ctx, "chunks/"), "viewer", api=True),
    Endpoint("document download (API)", "GET", lambda ctx: api(ctx, "download/"), "viewer", api=True),
    Endpoint("re-process (API)", "POST", lambda ctx: api(ctx, "reprocess/"), "admin", api=True, format="json"),
    Endpoint(
        "cancel (API)", "POST", lambda ctx: f"/api/documents/{ctx.active.pk}/cancel/", "admin", api=True, format="json"
    ),
    Endpoint("delete (API)", "DELETE", api, "admin", api=True),
    Endpoint(
        "re-process own (API)",
        "POST",
        lambda ctx: f"/api/documents/{ctx.own_documents[ctx.persona][0].pk}/reprocess/",
        "member",
        api=True,
        format="json",
    ),
    Endpoint(
        "cancel own (API)",
        "POST",
        lambda ctx: f"/api/documents/{ctx.own_documents[ctx.persona][1].pk}/cancel/",
        "member",
        api=True,
        format="json",
    ),
    Endpoint(
        "delete own (API)",
        "DELETE",
        lambda ctx: f"/api/documents/{ctx.own_documents[ctx.persona][0].pk}/",
        "member",
        api=True,
    ),
    # Someone else's document: admins and owners only.
    Endpoint("rename (API)", "PATCH", api, "admin", api=True, format="json", data=lambda ctx: {"title": "Renamed"}),
    Endpoint(
        "search (API)",
        "GET",
        lambda ctx: "/api/documents/search/",
        "viewer",
        api=True,
        data=lambda ctx: {"q": "vacation", "workspace": "acme"},
    ),
]

EXEMPT = [
    Exempt("documents/", "the user's own workspaces with their document counts, to pick one (test_pages.py)"),
]
