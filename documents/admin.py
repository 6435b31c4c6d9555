from django.contrib import admin

from documents import ingestion
from documents.models import Chunk, Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "workspace", "kind", "status", "page_count", "chunk_count", "size", "created_at"]
    list_filter = ["status", "kind", "workspace"]
    search_fields = ["title", "original_name", "sha256"]
    list_select_related = ["workspace"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "workspace", "original_name", "file", "kind", "content_type", "size", "sha256", "uploaded_by", "status",
        "failure_reason", "pages_done", "pages_total", "page_count", "chunk_count", "char_count", "preview",
        "attempts", "heartbeat_at", "task_id", "version", "created_at", "updated_at", "processed_at",
    ]  # fmt: skip
    fields = ["title", *readonly_fields]
    actions = ["reprocess_selected"]

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


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "position", "page", "section", "token_estimate"]
    list_filter = ["document__status", "document__kind", "workspace"]
    search_fields = ["document__title"]
    list_select_related = ["document"]
    readonly_fields = ["document", "workspace", "position", "text", "page", "section", "start", "end", "token_estimate"]
    fields = readonly_fields
    raw_id_fields = ["document"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
