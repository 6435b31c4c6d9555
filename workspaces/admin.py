"""Admin for workspaces, memberships and invitations.

The admin follows the same rules as the pages and the API: staff who are not
superusers see and change only the workspaces where they may manage members,
only owners touch owners, and a workspace always keeps at least one owner.
"""

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet

from workspaces import permissions
from workspaces.models import Invitation, Membership, Workspace
from workspaces.roles import Role

LAST_OWNER = "A workspace must keep at least one owner. Make someone else an owner first."
OWNERS_ONLY = "Only an owner of the workspace can make someone an owner or change an owner."


def managed_workspace_ids(user, action="manage_members"):
    return [ws for ws in permissions.workspace_ids(user) if permissions.can(user, action, ws)]


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Superusers see everything; other staff only the workspaces they administer."""

    workspace_path = "workspace"
    scope_action = "manage_members"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.workspace_path}__in": managed_workspace_ids(request.user, self.scope_action)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "workspace" and not request.user.is_superuser:
            # Another workspace's id is "not a valid choice", as in the forms of the pages.
            kwargs["queryset"] = Workspace.objects.filter(pk__in=managed_workspace_ids(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipAdminForm(forms.ModelForm):
    """Role changes in the admin obey the owner rules; `request_user` is set by the admin."""

    request_user = None

    class Meta:
        model = Membership
        fields = ["workspace", "user", "role", "joined_at"]

    def clean(self):
        cleaned = super().clean()
        old = Membership.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        workspace = old.workspace if old else cleaned.get("workspace")
        role = cleaned.get("role")
        if workspace is None or role is None:
            return cleaned
        if old and old.role == Role.OWNER and role != Role.OWNER:
            owners = Membership.objects.filter(workspace=workspace, role=Role.OWNER).count()
            if owners <= 1:
                raise forms.ValidationError(LAST_OWNER)
        user = self.request_user
        touches_owner = role == Role.OWNER or (old is not None and old.role == Role.OWNER)
        privileged = user is None or user.is_superuser or permissions.can(user, "manage_owners", workspace)
        if touches_owner and not privileged:
            raise forms.ValidationError(OWNERS_ONLY)
        return cleaned


def _form_for(request):
    return type("MembershipAdminForm", (MembershipAdminForm,), {"request_user": request.user})


class OwnersRemainFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if kept and not any(f.cleaned_data.get("role") == Role.OWNER for f in kept):
            raise forms.ValidationError(LAST_OWNER)


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = OwnersRemainFormSet
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "joined_at"]

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = _form_for(request)
        return super().get_formset(request, obj, **kwargs)


def _may_delete(request, membership):
    """None if the membership may be deleted, else why not."""
    if membership.role != Role.OWNER:
        return None
    if not request.user.is_superuser and not permissions.can(request.user, "manage_owners", membership.workspace):
        return OWNERS_ONLY
    if Membership.objects.filter(workspace=membership.workspace, role=Role.OWNER).count() <= 1:
        return LAST_OWNER
    return None


@admin.register(Workspace)
class WorkspaceAdmin(WorkspaceScopedAdmin):
    workspace_path = "pk"
    scope_action = "manage_settings"
    list_display = ["name", "slug", "archived", "cache_policy", "created_by", "created_at"]
    list_filter = ["archived", "cache_policy", "created_at"]
    search_fields = ["name", "slug", "description", "memberships__user__email"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]
    list_select_related = ["created_by"]

    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not request.user.is_superuser:
            return permissions.can(request.user, "delete_workspace", obj)
        return super().has_delete_permission(request, obj)


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    list_display = ["user", "workspace", "role", "joined_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__email", "user__full_name", "workspace__name", "workspace__slug"]
    autocomplete_fields = ["user", "workspace"]
    list_select_related = ["user", "workspace"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = _form_for(request)
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # A membership never moves to another workspace.
        return ["workspace"] if obj is not None else []

    def delete_model(self, request, obj):
        reason = _may_delete(request, obj)
        if reason:
            messages.error(request, f"{obj}: {reason}")
            return
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("workspace"):
            self.delete_model(request, membership)


@admin.register(Invitation)
class InvitationAdmin(WorkspaceScopedAdmin):
    list_display = ["email", "workspace", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role", ("accepted_at", admin.EmptyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "workspace__name", "workspace__slug"]
    readonly_fields = ["token", "created_at", "sent_at", "accepted_at", "accepted_by"]
    autocomplete_fields = ["workspace", "invited_by"]
    list_select_related = ["workspace"]
