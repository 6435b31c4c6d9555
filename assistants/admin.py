from django.contrib import admin

from assistants.models import Assistant, Conversation, Message
from corporate.admin_lists import LargeTableAdmin
from workspaces.admin import WorkspaceScopedAdmin


@admin.register(Assistant)
class AssistantAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "workspace", "model_name", "all_documents", "passages", "archived", "version", "updated_at"]
    list_filter = ["archived", "all_documents", "answer_without_sources", "model_name", "workspace"]
    search_fields = ["name", "description", "workspace__name", "workspace__slug"]
    readonly_fields = ["version", "created_at", "updated_at"]
    autocomplete_fields = ["workspace", "created_by"]
    filter_horizontal = ["documents"]
    list_select_related = ["workspace"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change and form.has_changed():
            # Every edit is a new version, in the admin as on the pages.
            form.instance.bump_version()


class SuperuserOnly:
    """Conversations are private: their content is for superusers only, never workspace admins."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["role", "status", "content", "cache_hit", "latency_ms", "feedback"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(SuperuserOnly, WorkspaceScopedAdmin, LargeTableAdmin):
    workspace_path = "assistant__workspace"
    list_display = ["__str__", "assistant", "user", "created_at", "updated_at"]
    list_filter = ["assistant__workspace"]  # by assistant: the search box (400 links were most of the page)
    search_fields = ["title", "user__email", "assistant__name"]
    readonly_fields = ["created_at", "updated_at"]
    autocomplete_fields = ["user"]
    raw_id_fields = ["assistant"]
    list_select_related = ["assistant", "user"]
    # Newest first by the primary key: sorting 200,000 conversations by `updated_at` reads them all.
    ordering = ["-pk"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(SuperuserOnly, WorkspaceScopedAdmin, LargeTableAdmin):
    workspace_path = "conversation__assistant__workspace"
    list_display = [
        "pk",
        "role",
        "status",
        "conversation",
        "cache_hit",
        "latency_ms",
        "total_tokens",
        "feedback",
        "created_at",
    ]
    list_filter = ["role", "status", "cache_hit", "feedback"]
    search_fields = ["content", "conversation__title", "conversation__user__email"]
    readonly_fields = [f.name for f in Message._meta.fields]
    list_select_related = ["conversation"]
    # Newest first by the primary key: the model's order (created_at) has no index of its own.
    ordering = ["-pk"]
