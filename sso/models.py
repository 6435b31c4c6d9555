"""Identity providers configured in the admin, their group mappings, and the memberships they manage.

Providers can also come from the environment (settings.OIDC_PROVIDERS);
mappings and managed memberships name a provider by its slug so that both
kinds are treated alike (sso.providers).
"""

from django.conf import settings
from django.core.validators import RegexValidator, URLValidator
from django.db import models

from workspaces.roles import Role

slug_validator = RegexValidator(r"^[a-z0-9-]+$", "Use lowercase letters, digits and dashes.")


class IdentityProvider(models.Model):
    """An OpenID Connect provider (Entra ID, Google Workspace, Okta, Keycloak, Authentik, ...)."""

    slug = models.CharField(
        max_length=40,
        unique=True,
        validators=[slug_validator],
        help_text="Short name used in addresses: the callback is /accounts/sso/<slug>/callback/.",
        error_messages={"unique": "A provider with this slug already exists."},
    )
    name = models.CharField(max_length=80, help_text='Shown on the button: "Sign in with <name>".')
    issuer = models.CharField(
        max_length=300,
        validators=[URLValidator(schemes=["https", "http"])],
        help_text="The issuer URL; its /.well-known/openid-configuration must answer.",
    )
    client_id = models.CharField(max_length=255)
    client_secret_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable that holds the client secret (preferred).",
    )
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    scopes = models.CharField(max_length=255, default="openid email profile")
    groups_claim = models.CharField(
        max_length=100, blank=True, default="groups", help_text="The claim that lists the user's groups."
    )
    allowed_domains = models.CharField(
        max_length=500,
        blank=True,
        help_text="Comma-separated email domains allowed to sign in here; empty: OIDC_ALLOWED_DOMAINS.",
    )
    trust_email = models.BooleanField(
        default=False,
        help_text="Treat the email address as verified when the provider sends no email_verified claim "
        "(Microsoft Entra ID sends none; its addresses are set by the directory).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.slug})"

    def set_secret(self, secret):
        from llmgateway.crypto import encrypt

        self.client_secret_encrypted = encrypt(secret) if secret else ""


class GroupMapping(models.Model):
    """Members of `group` at the provider get `role` in `workspace`, set again at each sign-in."""

    provider = models.CharField(max_length=40, validators=[slug_validator], help_text="The provider's slug.")
    group = models.CharField(max_length=255, help_text="The group's name or id as the provider sends it.")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="sso_mappings")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        ordering = ["provider", "group"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "group", "workspace"],
                name="%(app_label)s_%(class)s_unique",
                violation_error_message="This group is already mapped to this workspace.",
            )
        ]

    def __str__(self):
        return f"{self.provider}:{self.group} -> {self.workspace_id} as {self.role}"


class ManagedMembership(models.Model):
    """A workspace membership whose role a provider's group mapping decides.

    Without `raised_from`, the mapping made the membership, and it is removed
    when the groups no longer give it. With it, the membership was made by hand
    or by an invitation and a mapping raised its role: the role is put back to
    `raised_from` when no group gives a higher one any more.
    """

    provider = models.CharField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    raised_from = models.CharField(
        max_length=16,
        choices=Role.choices,
        blank=True,
        default="",
        help_text="The role a membership made by hand had before a mapping raised it; "
        "empty when the mapping made the membership.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "user", "workspace"], name="%(app_label)s_%(class)s_unique")
        ]

    def __str__(self):
        raised = f" (raised from {self.raised_from})" if self.raised_from else ""
        return f"{self.provider}: {self.user_id} in {self.workspace_id}{raised}"


class LinkIssuer(models.Model):
    """The issuer an SSO link (allauth's SocialAccount) was made under, kept where allauth never writes.

    allauth rewrites a link's extra_data with every sign-in's claims before the
    project decides, so the issuer kept there cannot be trusted after a refused
    sign-in; this one changes only when a sign-in is accepted. Removing the
    link removes it.
    """

    account = models.OneToOneField(
        "socialaccount.SocialAccount", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    issuer = models.CharField(max_length=300)

    def __str__(self):
        return f"{self.account_id} under {self.issuer}"
