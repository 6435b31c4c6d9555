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
    if db and not db.isdigit():
        raise ImproperlyConfigured(f"{name} must end with a database number, not /{db}")
    return url
