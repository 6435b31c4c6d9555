"""Typed readers for settings that come from the environment.

Each helper raises ImproperlyConfigured naming the variable when its value is
wrong, so a bad deployment stops with one clear line instead of a traceback.
"""

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name, default, minimum=None):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name, default=()):
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(name, url):
    """Django DATABASES entry from a URL, with a clear error for a bad one."""
    import dj_database_url

    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            f"{name} must start with postgres:// or sqlite://, not {parts.scheme or 'nothing'}://"
        )
    if parts.scheme != "sqlite" and not parts.path.strip("/"):
        raise ImproperlyConfigured(f"{name} must name a database, e.g. postgres://user@host:5432/corporate")
    try:
        return dj_database_url.parse(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None


def _redacted(url):
    """The URL with any password replaced, for error messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@", 1)
    return url


def redis_url(name, url):
    """Validate a redis:// URL and return it unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name} must start with redis://, rediss:// or unix://, not {_redacted(url)!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a bad port: {_redacted(url)!r}") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise ImproperlyConfigured(f"{name} must name a host, e.g. redis://127.0.0.1:6379/0")
    db = parts.path.strip("/")
    if db and not (db.isascii() and db.isdigit()):
        raise ImproperlyConfigured(f"{name} must end with a database number, not /{db}")
    return url


OIDC_SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def env_oidc_providers():
    """OpenID Connect providers named by OIDC_PROVIDERS, each read from OIDC_<NAME>_... variables.

    OIDC_PROVIDERS=okta,entra then, for okta: OIDC_OKTA_ISSUER (required),
    OIDC_OKTA_CLIENT_ID (required), OIDC_OKTA_CLIENT_SECRET, OIDC_OKTA_DISPLAY_NAME,
    OIDC_OKTA_SCOPES (space separated), OIDC_OKTA_GROUPS_CLAIM,
    OIDC_OKTA_GROUP_MAP (group=workspace-slug:role, comma separated) and
    OIDC_OKTA_ALLOWED_DOMAINS, OIDC_OKTA_TRUST_EMAIL. A list of plain dicts (sso.providers reads them).
    """
    from workspaces.roles import Role  # plain choices: nothing in it needs the settings

    roles = Role.values
    providers = []
    for slug in env_list("OIDC_PROVIDERS", []):
        slug = slug.lower()
        if not set(slug) <= OIDC_SLUG_CHARS:
            raise ImproperlyConfigured(f"OIDC_PROVIDERS: {slug!r} may hold only letters, digits and dashes")
        prefix = "OIDC_" + slug.upper().replace("-", "_") + "_"
        issuer = env_str(prefix + "ISSUER", "").strip().rstrip("/")
        if not issuer.startswith(("https://", "http://")):
            raise ImproperlyConfigured(f"{prefix}ISSUER must be the provider's https:// address, not {issuer!r}")
        client_id = env_str(prefix + "CLIENT_ID", "").strip()
        if not client_id:
            raise ImproperlyConfigured(f"{prefix}CLIENT_ID must be set for the provider {slug}")
        group_map = []
        for entry in env_list(prefix + "GROUP_MAP", []):
            group, _, target = entry.rpartition("=")
            workspace, _, role = target.partition(":")
            if not group or not workspace or not role:
                raise ImproperlyConfigured(
                    f"{prefix}GROUP_MAP entries look like group=workspace-slug:role, not {entry!r}"
                )
            role = role.strip().lower()
            if role not in roles:
                raise ImproperlyConfigured(
                    f"{prefix}GROUP_MAP: {entry!r} names the role {role!r}; use one of {', '.join(roles)}"
                )
            group_map.append((group.strip(), workspace.strip(), role))
        providers.append(
            {
                "slug": slug,
                "name": env_str(prefix + "DISPLAY_NAME", "") or slug.title(),
                "issuer": issuer,
                "client_id": client_id,
                "secret_env": prefix + "CLIENT_SECRET",
                "scopes": env_str(prefix + "SCOPES", "openid email profile").split(),
                "groups_claim": env_str(prefix + "GROUPS_CLAIM", "groups").strip(),
                "group_map": group_map,
                "allowed_domains": [d.lower() for d in env_list(prefix + "ALLOWED_DOMAINS", [])],
                "trust_email": env_bool(prefix + "TRUST_EMAIL", False),
            }
        )
    return providers
