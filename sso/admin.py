from django import forms
from django.contrib import admin

from sso.models import GroupMapping, IdentityProvider, ManagedMembership


class IdentityProviderForm(forms.ModelForm):
    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Kept encrypted in the database; leave empty to keep the current one. "
        "Prefer an environment variable (above) where you can.",
    )
    clear_secret = forms.BooleanField(required=False, help_text="Forget the stored secret.")

    class Meta:
        model = IdentityProvider
        fields = [
            "slug",
            "name",
            "issuer",
            "client_id",
            "client_secret_env",
            "scopes",
            "groups_claim",
            "allowed_domains",
            "trust_email",
            "enabled",
        ]

    def clean_issuer(self):
        return self.cleaned_data["issuer"].rstrip("/")

    def clean(self):
        data = super().clean()
        has_stored = bool(self.instance.client_secret_encrypted) and not data.get("clear_secret")
        if not (data.get("client_secret") or data.get("client_secret_env") or has_stored):
            raise forms.ValidationError("Give the client secret, or the environment variable that holds it.")
        return data

    def save(self, commit=True):
        provider = super().save(commit=False)
        if self.cleaned_data.get("clear_secret"):
            provider.client_secret_encrypted = ""
        if self.cleaned_data.get("client_secret"):
            provider.set_secret(self.cleaned_data["client_secret"])
        if commit:
            provider.save()
        return provider


@admin.register(IdentityProvider)
class IdentityProviderAdmin(admin.ModelAdmin):
    form = IdentityProviderForm
    list_display = ["name", "slug", "issuer", "client_id", "secret_source", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["name", "slug", "issuer", "client_id"]

    @admin.display(description="secret")
    def secret_source(self, obj):
        if obj.client_secret_env:
            return f"${obj.client_secret_env}"
        return "stored, encrypted" if obj.client_secret_encrypted else "none"


@admin.register(GroupMapping)
class GroupMappingAdmin(admin.ModelAdmin):
    list_display = ["provider", "group", "workspace", "role"]
    list_filter = ["provider", "role"]
    search_fields = ["group", "workspace__slug", "workspace__name"]
    raw_id_fields = ["workspace"]


@admin.register(ManagedMembership)
class ManagedMembershipAdmin(admin.ModelAdmin):
    list_display = ["provider", "user", "workspace", "raised_from"]
    list_filter = ["provider", "raised_from"]
    search_fields = ["user__email", "workspace__slug"]
    raw_id_fields = ["user", "workspace"]


def _unregister_allauth():
    """allauth's own provider table would keep secrets in clear; providers are configured above instead."""
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialApp, SocialToken

    for model in (SocialApp, SocialToken, EmailAddress):
        if admin.site.is_registered(model):
            admin.site.unregister(model)


_unregister_allauth()
