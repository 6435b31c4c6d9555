from django import forms
from django.contrib import admin, messages

from llmgateway.models import ApiKey, ModelConfig


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
        fields = [
            "name",
            "description",
            "provider",
            "upstream_model",
            "base_url",
            "api_key_env",
            "price_input_per_1k",
            "price_output_per_1k",
            "timeout_seconds",
            "max_retries",
            "deadline_seconds",
            "cache_ttl_seconds",
            "fallback",
            "enabled",
            "is_default",
        ]

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
