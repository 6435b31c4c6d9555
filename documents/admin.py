from django.contrib import admin, messages

from corporate.admin_lists import LargeTableAdmin
from documents import ingestion, vectors
from documents.models import Chunk, Document


@admin.register(Document)
class DocumentAdmin(LargeTableAdmin):
    list_display = [
        "title", "workspace", "kind", "status", "semantic_index", "page_count", "chunk_count", "size", "created_at",
    ]  # fmt: skip
    # A date filter, not a date hierarchy: the hierarchy reads every row's date to draw its links.
    list_filter = ["status", "kind", ("created_at", admin.DateFieldListFilter), "workspace"]
    search_fields = ["title", "original_name", "=sha256"]
    list_select_related = ["workspace"]
    # Newest first by the primary key: documents_document has no index on created_at alone.
    ordering = ["-pk"]
    readonly_fields = [
        "workspace", "original_name", "file", "kind", "content_type", "size", "sha256", "uploaded_by", "status",
        "failure_reason", "pages_done", "pages_total", "page_count", "chunk_count", "char_count", "preview",
        "attempts", "heartbeat_at", "task_id", "version", "embedding_model", "embedding_error", "embedding_attempts",
        "created_at", "updated_at", "processed_at",
    ]  # fmt: skip
    fields = ["title", *readonly_fields]
    actions = ["reprocess_selected", "embed_selected"]

    def changelist_view(self, request, extra_context=None):
        warn_if_lexical(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        warn_if_lexical(request)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Search by meaning")
    def semantic_index(self, obj):
        if obj.embedding_error:
            return f"pending: {obj.embedding_error[:80]}"
        return "ready" if obj.embedding_model else "—"

    @admin.action(description="Embed the selected documents again (search by meaning)")
    def embed_selected(self, request, queryset):
        results = [ingestion.embed_document(document.pk, force=True) for document in queryset]
        self.message_user(
            request,
            f"Embedded {results.count('embedded')} document(s); {results.count('pending')} pending (the model failed).",
        )

    def has_add_permission(self, request):
        return False  # uploads go through the upload page, API or `manage.py ingest`

    def delete_model(self, request, obj):
        ingestion.delete_document(obj)

    def delete_queryset(self, request, queryset):
        for document in queryset:
            ingestion.delete_document(document)

    @admin.action(description="Re-process the selected documents")
    def reprocess_selected(self, request, queryset):
        queued = sum(ingestion.reprocess(document) for document in queryset)
        self.message_user(request, f"Queued {queued} document(s) to be processed again.")


def warn_if_lexical(request):
    """The admin says when search works by words only, and why (e.g. PostgreSQL without pgvector)."""
    if request.method != "GET":
        return
    state = vectors.state()
    if not state.available:
        messages.warning(request, f"Search by meaning is off; search matches words only: {state.problem}")


@admin.register(Chunk)
class ChunkAdmin(LargeTableAdmin):
    list_display = ["document", "position", "page", "section", "token_estimate", "embedding_model"]
    list_filter = ["document__status", "document__kind", "workspace"]
    search_fields = ["document__title"]
    list_select_related = ["document"]
    # By document and position (the unique index); the model's "document" would sort by the document's date.
    ordering = ["document_id", "position"]
    readonly_fields = [
        "document", "workspace", "position", "text", "page", "section", "start", "end", "token_estimate",
        "embedding_model",
    ]  # fmt: skip
    fields = readonly_fields
    raw_id_fields = ["document"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
