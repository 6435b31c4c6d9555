"""The configured identity providers, from the environment and the admin, in one shape."""

import logging
import os
from dataclasses import dataclass, field

from django.conf import settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderConfig:
    slug: str
    name: str
    issuer: str
    client_id: str
    scopes: tuple = ("openid", "email", "profile")
    groups_claim: str = "groups"
    # (group, workspace slug, role) from the environment; the admin's GroupMapping rows add to these.
    group_map: tuple = ()
    allowed_domains: tuple = ()
    # The provider sends no email_verified claim, and its addresses are the directory's own.
    trust_email: bool = False
    secret_env: str = ""
    secret_encrypted: str = field(default="", repr=False)
    source: str = "settings"

    def secret(self):
        """The client secret: from its environment variable, else decrypted from the database ("" if none)."""
        if self.secret_env:
            value = os.environ.get(self.secret_env, "")
            if value:
                return value
        if self.secret_encrypted:
            from llmgateway.crypto import decrypt

            try:
                return decrypt(self.secret_encrypted)
            except ValueError:
                log.error("sso: the client secret of %s cannot be decrypted with the configured keys", self.slug)
        return ""

    def domains(self):
        return self.allowed_domains or tuple(settings.OIDC_ALLOWED_DOMAINS)


def _from_settings():
    return [
        ProviderConfig(
            slug=p["slug"],
            name=p["name"],
            issuer=p["issuer"],
            client_id=p["client_id"],
            scopes=tuple(p["scopes"]),
            groups_claim=p["groups_claim"],
            group_map=tuple(tuple(m) for m in p["group_map"]),
            allowed_domains=tuple(p["allowed_domains"]),
            secret_env=p["secret_env"],
            trust_email=p.get("trust_email", False),
        )
        for p in settings.OIDC_PROVIDERS
    ]


def _from_row(row):
    return ProviderConfig(
        slug=row.slug,
        name=row.name,
        issuer=row.issuer.rstrip("/"),
        client_id=row.client_id,
        scopes=tuple(row.scopes.split()) or ("openid", "email", "profile"),
        groups_claim=row.groups_claim,
        allowed_domains=tuple(d.strip().lower() for d in row.allowed_domains.split(",") if d.strip()),
        secret_env=row.client_secret_env,
        trust_email=row.trust_email,
        secret_encrypted=row.client_secret_encrypted,
        source="admin",
    )


def all_providers():
    """Every enabled provider (one query); the environment's win over an admin row with the same slug.

    While the database does not answer, the environment's alone: the sign-in page is still shown.
    """
    from django.db import DatabaseError

    from sso.models import IdentityProvider

    providers = {p.slug: p for p in _from_settings()}
    try:
        rows = list(IdentityProvider.objects.filter(enabled=True))
    except DatabaseError as exc:
        log.warning("sso: the identity providers of the admin are unreadable: %s", exc.__class__.__name__)
        rows = []
    for row in rows:
        providers.setdefault(row.slug, _from_row(row))
    return sorted(providers.values(), key=lambda p: p.name.lower())


def get_provider(slug):
    """The enabled provider with this slug, or None."""
    from sso.models import IdentityProvider

    for provider in _from_settings():
        if provider.slug == slug:
            return provider
    row = IdentityProvider.objects.filter(enabled=True, slug=slug).first()
    return _from_row(row) if row else None


def form_action_origins(providers):
    """Origins the sign-in buttons lead to: each issuer's, and its authorization endpoint's when known (cached)."""
    from django.core.cache import cache

    from sso.middleware import origin

    origins = []
    for provider in providers:
        urls = [provider.issuer]
        discovery = cache.get(f"sso:discovery:{provider.slug}:{provider.issuer}") or {}
        urls.append(discovery.get("authorization_endpoint"))
        for url in urls:
            found = origin(url)
            if found and found not in origins:
                origins.append(found)
    return origins
