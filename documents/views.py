"""Document pages: a workspace's list, upload, detail (with live status), search, delete, re-process."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from corporate.api import parse_id
from documents import ingestion
from documents import search as search_module
from documents.downloads import file_response
from documents.forms import FilterForm, SearchForm, UploadForm
from documents.models import Document, Status
from documents.uploads import (
    PARSE_ERRORS,
    display_name,
    install_guard,
    limit_label,
    parse_error,
)
from workspaces.models import Workspace
from workspaces.navigation import sole_workspace
from workspaces.permissions import can, check, get_workspace_for
from workspaces.roles import ANYONES

PAGE_SIZE = 25
CHUNKS_PER_PAGE = 50


def _document_for(request, slug, pk, action="view"):
    """The document in the workspace: 404 for outsiders (and other workspaces' ids), 403 without the role."""
    workspace = get_workspace_for(request.user, slug, "view")
    document = get_object_or_404(Document.objects.select_related("uploaded_by"), workspace=workspace, pk=pk)
    document.workspace = workspace
    check(request.user, action, workspace, document if action in ANYONES else None)
    return workspace, document


def _abilities(user, workspace, document=None):
    """What the page may offer; with a document, whether this user may change that one."""
    return {
        "can_upload": can(user, "upload", workspace),
        "can_edit": can(user, "edit_documents", workspace, document),
    }


@login_required
@require_GET
def home(request):
    """Pick a workspace: each of the user's workspaces with its document counts; the only one goes straight to it."""
    only = sole_workspace(request.user)
    if only is not None:
        return redirect("documents:list", only.slug)
    ready = Document.objects.filter(workspace=OuterRef("pk"), status=Status.READY).order_by().values("workspace")
    total = Document.objects.filter(workspace=OuterRef("pk")).order_by().values("workspace")
    workspaces = (
        Workspace.objects.for_user(request.user)
        .annotate(
            document_total=Coalesce(Subquery(total.annotate(n=Count("pk")).values("n")), Value(0)),
            document_ready=Coalesce(Subquery(ready.annotate(n=Count("pk")).values("n")), Value(0)),
        )
        .order_by("archived", "name")
    )
    return render(request, "documents/home.html", {"workspaces": workspaces})


@login_required
@require_GET
def document_list(request, slug):
    workspace = get_workspace_for(request.user, slug, "view")
    form = FilterForm(request.GET or None)
    documents = form.apply(Document.objects.in_workspace(workspace).for_list())
    page = Paginator(documents, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("partial", None)
    context = {
        "workspace": workspace,
        "form": form,
        "page": page,
        "documents": page.object_list,
        "any_active": any(document.is_active for document in page.object_list),
        "query": query.urlencode(),
        "filtered": any(request.GET.get(name) for name in ("q", "status", "kind")),
        **_abilities(request.user, workspace),
    }
    if request.GET.get("partial") == "rows":
        return render(request, "documents/_rows.html", context)
    return render(request, "documents/list.html", context)


def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "")


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def upload(request, slug):
    """Upload page.

    The guard must see the body before anything reads it, and the CSRF check
    reads it too (for the form's token): a body refused while being read is
    answered here, with the limit it broke, before that check could turn it
    into a bare 400. Nothing is stored for such a body.
    """
    workspace = get_workspace_for(request.user, slug, "upload")
    if request.method == "POST":
        install_guard(request)
        try:
            request.POST  # noqa: B018 - parse the body here, inside the guard, to answer its errors
        except PARSE_ERRORS as exc:
            status, detail, code = parse_error(exc)
            refused = [{"name": "", "detail": detail, "code": code, "status": status}]
            return _upload_answer(request, _upload_context(workspace), [], refused)
    return _upload(request, workspace)


def _upload_context(workspace):
    return {"workspace": workspace, "form": UploadForm(), "limit": limit_label(), "max_files": _max_files()}


@csrf_protect
def _upload(request, workspace):
    context = _upload_context(workspace)
    if request.method != "POST":
        return render(request, "documents/upload.html", context)
    files = request.FILES.getlist("files")
    accepted, refused = [], list(request.upload_rejections)
    for uploaded, result in ingestion.accept_each(workspace, files, request.user):
        if isinstance(result, ingestion.UploadRejected):
            refused.append(
                {
                    "name": display_name(uploaded.name),
                    "detail": result.message,
                    "code": result.code,
                    "status": result.status,
                    "duplicate": result.duplicate,
                    "retry_after": result.retry_after,
                }
            )
        else:
            accepted.append(result)
    if not accepted and not refused:
        refused.append({"name": "", "detail": "Choose at least one file to upload.", "code": "required", "status": 400})
    return _upload_answer(request, context, accepted, refused)


def _upload_answer(request, context, accepted, refused):
    """201 when all went in; otherwise the refusals' status (400 when they differ), as JSON or the page."""
    statuses = {item["status"] for item in refused}
    status = 201 if not refused else (statuses.pop() if len(statuses) == 1 else 400)
    if _wants_json(request):
        body = {"documents": [_document_json(document) for document in accepted], "errors": []}
        for item in refused:
            error = {key: item[key] for key in ("name", "detail", "code")}
            if item.get("duplicate") is not None:
                error["document"] = {"id": item["duplicate"].pk, "url": item["duplicate"].get_absolute_url()}
            body["errors"].append(error)
        if refused:
            body["detail"] = refused[0]["detail"]
        return _retry_after(JsonResponse(body, status=status if not accepted else 201), refused)
    if accepted:
        messages.success(request, _accepted_message(accepted))
    if not refused:
        return redirect("documents:list", context["workspace"].slug)
    return _retry_after(
        render(request, "documents/upload.html", {**context, "refused": refused}, status=status), refused
    )


def _retry_after(response, refused):
    """Say when to try again, when a refusal knows (a storage that cannot be written to)."""
    seconds = max((item.get("retry_after") or 0 for item in refused), default=0)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


def _document_json(document):
    return {
        "id": document.pk,
        "title": document.title,
        "status": document.status,
        "url": document.get_absolute_url(),
        "status_url": reverse("documents:status", args=[document.workspace.slug, document.pk]),
    }


def _max_files():
    return settings.DATA_UPLOAD_MAX_NUMBER_FILES


def _accepted_message(accepted):
    names = ", ".join(f"“{document.title}”" for document in accepted[:5])
    more = f" and {len(accepted) - 5} more" if len(accepted) > 5 else ""
    noun = "file" if len(accepted) == 1 else "files"
    return f"Uploaded {len(accepted)} {noun}: {names}{more}. They are being processed."


@login_required
@require_GET
def detail(request, slug, pk):
    workspace, document = _document_for(request, slug, pk)
    if document.semantic_state == "pending" and ingestion.catch_up_embeddings(
        Document.objects.filter(pk=document.pk), other_models=False
    ):
        document.refresh_from_db()  # its lost retry was queued again (and, without a worker queue, has run)
    chunks = document.chunks.order_by("position").only("id", "position", "text", "page", "section", "document_id")
    selected = None
    page_number = request.GET.get("chunks")
    chunk_id = parse_id(request.GET.get("chunk"))
    if chunk_id is not None:
        selected = document.chunks.filter(pk=chunk_id).values_list("pk", "position").first()
        if selected:
            page_number = selected[1] // CHUNKS_PER_PAGE + 1
    chunk_page = Paginator(chunks, CHUNKS_PER_PAGE).get_page(page_number)
    return render(
        request,
        "documents/detail.html",
        {
            "workspace": workspace,
            "document": document,
            "chunk_page": chunk_page,
            "selected_chunk": selected[0] if selected else None,
            **_abilities(request.user, workspace, document),
        },
    )


@login_required
@require_GET
def status(request, slug, pk):
    """The status panel, polled by htmx while the document is queued or processing."""
    workspace, document = _document_for(request, slug, pk)
    if document.status == Status.PROCESSING and ingestion.recover_stalled(Document.objects.filter(pk=document.pk)):
        document.refresh_from_db()
    if _wants_json(request):
        return JsonResponse(
            {
                "id": document.pk,
                "status": document.status,
                "pages_done": document.pages_done,
                "pages_total": document.pages_total,
                "progress": document.progress_percent,
                "chunk_count": document.chunk_count,
                "failure_reason": document.failure_reason,
                # "ready", "pending" (with the reason) or "" (this database searches words only)
                "search_by_meaning": document.semantic_state if document.status == Status.READY else "",
                "embedding_error": document.embedding_error,
            }
        )
    response = render(
        request,
        "documents/_status.html",
        {"workspace": workspace, "document": document, **_abilities(request.user, workspace, document)},
    )
    if document.is_final and request.GET.get("was") in {Status.QUEUED, Status.PROCESSING}:
        # Finished while the page watched: reload it to show the passages.
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_GET
def download(request, slug, pk):
    """The original file, always as an attachment that the browser must not sniff or render."""
    workspace, document = _document_for(request, slug, pk)
    return file_response(document)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, slug, pk):
    workspace, document = _document_for(request, slug, pk, "edit_documents")
    if request.method == "POST":
        title = document.title
        ingestion.delete_document(document)
        messages.success(request, f"Deleted “{title}”, its passages and its file.")
        return redirect("documents:list", workspace.slug)
    return render(request, "documents/delete.html", {"workspace": workspace, "document": document})


def title_problem(title):
    """Why a new title cannot be used, or ''."""
    if not title:
        return "Give the document a title."
    if "\x00" in title:
        return "The title contains a NUL character; remove it."
    if len(title) > TITLE_MAX:
        return f"The title is {len(title)} characters long; the limit is {TITLE_MAX}."
    return ""


TITLE_MAX = 255


@login_required
@require_POST
def rename(request, slug, pk):
    """Give the document another title (shown in lists, search results and citations)."""
    workspace, document = _document_for(request, slug, pk, "edit_documents")
    title = " ".join(request.POST.get("title", "").split())
    problem = title_problem(title)
    if problem:
        messages.error(request, f"{problem} The title stays “{document.title}”; you asked for “{title[:300]}”.")
    else:
        Document.objects.filter(pk=document.pk).update(title=title, updated_at=timezone.now())
        messages.success(request, f"Renamed “{document.title}” to “{title}”.")
    return redirect(document.get_absolute_url())


@login_required
@require_POST
def reprocess(request, slug, pk):
    workspace, document = _document_for(request, slug, pk, "edit_documents")
    if ingestion.reprocess(document):
        messages.success(request, f"“{document.title}” is queued to be processed again.")
    else:
        messages.warning(request, f"“{document.title}” is already being processed.")
    return redirect(document.get_absolute_url())


@login_required
@require_POST
def cancel(request, slug, pk):
    workspace, document = _document_for(request, slug, pk, "edit_documents")
    if ingestion.cancel(document, request.user):
        messages.success(request, f"Stopped processing “{document.title}”.")
    else:
        messages.warning(request, f"“{document.title}” was not being processed.")
    return redirect(document.get_absolute_url())


@login_required
@require_GET
def search(request, slug):
    workspace = get_workspace_for(request.user, slug, "search")
    form = SearchForm(request.GET or None)
    results, query = [], ""
    if form.is_valid():
        query = form.cleaned_data["q"]
        if query:
            results = search_module.search(request.user, query, workspace=workspace, limit=20)
    elif request.GET:
        context = {"workspace": workspace, "form": form, **_abilities(request.user, workspace)}
        return render(request, "documents/search.html", context, status=400)
    return render(
        request,
        "documents/search.html",
        {
            "workspace": workspace,
            "form": form,
            "results": results,
            "query": query,
            **_abilities(request.user, workspace),
        },
    )
