"""Fixtures shared by every app's tests."""

import os
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name, reason):
    """Skip a test whose backing service is missing; under CI that is a failure."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI but {reason}")
    pytest.skip(f"{name} not available: {reason}")


def _port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url():
    """A reachable Redis server: REDIS_URL, or the local default."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    parts = urlsplit(url)
    if not _port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
        require_service("Redis", f"nothing answers at {parts.hostname}:{parts.port or 6379}")
    return url


@pytest.fixture(scope="session")
def postgres_url():
    """A reachable PostgreSQL server (trust auth): TEST_POSTGRES_URL, or the local default."""
    url = os.environ.get("TEST_POSTGRES_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(url)
    if not _port_open(parts.hostname or "127.0.0.1", parts.port or 5432):
        require_service("PostgreSQL", f"nothing answers at {parts.hostname}:{parts.port or 5432}")
    return url


@pytest.fixture(scope="session", autouse=True)
def _static_manifest():
    """Pages use hashed static names, so the manifest must exist."""
    if not (settings.STATIC_ROOT / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def make_user(db, django_user_model):
    def make(email, password="correct horse battery", **extra):
        return django_user_model.objects.create_user(email=email, password=password, **extra)

    return make


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    cache = settings.CACHES["default"]
    return [
        f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}",
        f"cache: {cache['BACKEND'].rsplit('.', 1)[-1]} {cache.get('LOCATION', '')}",
        f"CI: {IN_CI}",
    ]


def pytest_configure(config):
    # The live server serves static files the way production does: WhiteNoise
    # from the collected, hashed files, not the finders of the dev server.
    import django.contrib.staticfiles.handlers as static_handlers

    class CollectedStaticHandler(static_handlers.StaticFilesHandler):
        def _should_handle(self, path):
            return False

    static_handlers.StaticFilesHandler = CollectedStaticHandler
