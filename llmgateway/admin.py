from django import forms
from django.contrib import admin, messages

from corporate.admin_lists import LargeTableAdmin
from llmgateway.models import ApiKey, Limit, ModelConfig, UsageDay, UsageHour, UsageRecord


class ModelConfigForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown again. Leave empty to keep the stored key; "
        "prefer an environment variable (API key env).",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = ModelConfig
        fields = list(ModelConfig.SETTINGS)

    def save(self, commit=True):
        model = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            model.set_api_key("")
        elif self.cleaned_data.get("api_key"):
            model.set_api_key(self.cleaned_data["api_key"])
        if commit:
            model.save()
        return model


@admin.register(ModelConfig)
class ModelConfigAdmin(admin.ModelAdmin):
    form = ModelConfigForm
    list_display = ["name", "provider", "upstream_model", "enabled", "is_default", "has_stored_key", "fallback"]
    list_filter = ["provider", "enabled"]
    search_fields = ["name", "upstream_model"]
    list_select_related = ["fallback"]
    readonly_fields = ["has_stored_key", "created_at", "updated_at"]

    @admin.display(boolean=True, description="stored key")
    def has_stored_key(self, obj):
        return obj.has_stored_key


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "display_prefix", "workspace", "created_by", "created_at", "expires_at", "state"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "workspace__slug", "created_by__email"]
    list_select_related = ["workspace", "created_by"]
    readonly_fields = ["prefix", "key_hash", "workspace", "created_by", "created_at", "revoked_at"]
    fields = ["name", "workspace", "prefix", "scopes", "created_by", "created_at", "expires_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Keys are created on the workspace's keys page or with `manage.py create_api_key`.
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            key.revoke()
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(Limit)
class LimitAdmin(admin.ModelAdmin):
    """Limits of every scope; rows without a workspace are the defaults for every workspace (staff only)."""

    list_display = ["__str__", "kind", "workspace", "user", "api_key", *Limit.FIELDS, "updated_at"]
    list_filter = ["kind", ("workspace", admin.EmptyFieldListFilter)]
    search_fields = ["workspace__slug", "user__email", "api_key__name"]
    list_select_related = ["workspace", "user", "api_key"]
    autocomplete_fields = ["workspace", "user"]
    raw_id_fields = ["api_key"]
    fieldsets = [
        (
            None,
            {
                "fields": ["kind", "workspace", "user", "api_key"],
                "description": "Whole workspace: leave the workspace empty for the default of every workspace. "
                "Per person: leave the person empty for each member without limits of their own (and the "
                "workspace empty too for each member of every workspace). API key: pick the key and its workspace.",
            },
        ),
        ("Limits (empty: no limit)", {"fields": list(Limit.FIELDS)}),
    ]

    def save_model(self, request, obj, form, change):
        if obj.api_key_id and not obj.workspace_id:
            obj.workspace_id = obj.api_key.workspace_id
        super().save_model(request, obj, form, change)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class Checked(form):
            def clean(self):
                data = super().clean()
                kind, workspace, user, key = (data.get(n) for n in ("kind", "workspace", "user", "api_key"))
                if kind == "key" and key is None:
                    self.add_error("api_key", "Pick the API key these limits are for.")
                if kind != "key" and key is not None:
                    self.add_error("api_key", "Only limits of the kind “API key” name a key.")
                if kind == "key" and workspace is not None and key is not None and key.workspace_id != workspace.pk:
                    self.add_error("workspace", "The key belongs to another workspace.")
                if kind in ("workspace", "key") and user is not None:
                    self.add_error("user", "Only limits per person name a person.")
                if kind == "user" and user is not None:
                    if workspace is None:
                        self.add_error("workspace", "Name the workspace of this person's limits.")
                    elif not workspace.memberships.filter(user=user).exists():
                        self.add_error("user", "This person is not a member of the workspace.")
                return data

        return Checked


class OriginFilter(admin.SimpleListFilter):
    """Fixed choices: listing the values present would read every usage record."""

    title = "origin"
    parameter_name = "origin"
    ORIGINS = [("v1", "/v1/ API"), ("chat", "Chat"), ("preview", "Assistant preview"), ("python", "Server code")]

    def lookups(self, request, model_admin):
        return self.ORIGINS

    def queryset(self, request, queryset):
        return queryset.filter(origin=self.value()) if self.value() else queryset


class StatusFilter(admin.SimpleListFilter):
    """Answered, refused or failed, by HTTP status class (fixed choices, like the origin's)."""

    title = "status"
    parameter_name = "status_class"

    def lookups(self, request, model_admin):
        return [("2", "Answered (2xx)"), ("4", "Refused (4xx)"), ("5", "Failed (5xx)")]

    def queryset(self, request, queryset):
        if self.value() in ("2", "4", "5"):
            low = int(self.value()) * 100
            return queryset.filter(status__gte=low, status__lt=low + 100)
        return queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(LargeTableAdmin):
    list_display = ["created_at", "workspace", "user", "model", "cache", "status", "total_tokens", "cost", "origin"]
    # A date filter, not a date hierarchy: the hierarchy reads every row's date to draw its links.
    list_filter = [("created_at", admin.DateFieldListFilter), "cache", OriginFilter, StatusFilter]
    search_fields = ["workspace__slug", "user__email", "model"]
    list_select_related = ["workspace", "user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UsageDay)
class UsageDayAdmin(admin.ModelAdmin):
    list_display = ["day", "workspace", "model", "cache", "requests", "prompt_tokens", "completion_tokens", "cost"]
    list_filter = ["cache"]
    list_select_related = ["workspace"]
    date_hierarchy = "day"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UsageHour)
class UsageHourAdmin(LargeTableAdmin):
    list_display = ["hour", "workspace", "model", "cache", "requests", "prompt_tokens", "completion_tokens", "cost"]
    # A date filter, not a date hierarchy: the hierarchy reads every row's date to draw its links.
    list_filter = [("hour", admin.DateFieldListFilter), "cache"]
    list_select_related = ["workspace"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
