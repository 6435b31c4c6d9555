from django.contrib import admin

from workspaces import permissions
from workspaces.models import Invitation, Membership, Workspace


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Superusers see everything; other staff only the workspaces they administer."""

    workspace_path = "workspace"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        ids = [
            ws for ws in permissions.workspace_ids(request.user) if permissions.can(request.user, "manage_settings", ws)
        ]
        return qs.filter(**{f"{self.workspace_path}__in": ids})


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "joined_at"]


@admin.register(Workspace)
class WorkspaceAdmin(WorkspaceScopedAdmin):
    workspace_path = "pk"
    list_display = ["name", "slug", "archived", "cache_policy", "created_by", "created_at"]
    list_filter = ["archived", "cache_policy", "created_at"]
    search_fields = ["name", "slug", "description", "memberships__user__email"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]
    list_select_related = ["created_by"]


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ["user", "workspace", "role", "joined_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__email", "user__full_name", "workspace__name", "workspace__slug"]
    autocomplete_fields = ["user", "workspace"]
    list_select_related = ["user", "workspace"]


@admin.register(Invitation)
class InvitationAdmin(WorkspaceScopedAdmin):
    list_display = ["email", "workspace", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role", ("accepted_at", admin.EmptyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "workspace__name", "workspace__slug"]
    readonly_fields = ["token", "created_at", "sent_at", "accepted_at", "accepted_by"]
    autocomplete_fields = ["workspace", "invited_by"]
    list_select_related = ["workspace"]
