"""Fixtures shared by every app's tests."""

import os
import socket
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command

from corporate.tests.browser import browser, page  # noqa: F401  (fixtures for page-flow tests)
from corporate.tests.redis_server import own_redis, redis_cache  # noqa: F401  (fixtures for Redis outage tests)

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
    """Pages use hashed static names, so the manifest must exist and be current."""
    manifest = settings.STATIC_ROOT / "staticfiles.json"
    sources = [p for d in settings.STATICFILES_DIRS for p in d.rglob("*") if p.is_file()]
    newest = max((p.stat().st_mtime for p in sources), default=0)
    if not manifest.exists() or manifest.stat().st_mtime < newest:
        call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _temporary_media(tmp_path_factory):
    """Files uploaded by tests go to a temporary folder, never var/media."""
    from django.test import override_settings

    with override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media")):
        yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, and its installation id read once (cache keys carry it), outside any query count."""
    from corporate import installation

    with django_db_blocker.unblock():
        installation.forget()
        installation.current()


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    from documents import ingestion
    from llmgateway.metering import records

    cache.clear()
    records.discard_pending()  # usage records buffered by an earlier test
    ingestion._models_checked.clear()  # embedding models this process compared with documents of earlier tests
    yield


@pytest.fixture(autouse=True)
def _not_across_midnight():
    """No test starts in the last minute of a day (in TIME_ZONE): it waits for the next one.

    Budgets, usage totals and date ranges are per day and per month, read from the clock at several
    moments of a test: one that straddles midnight would spend in one day and check in the next.
    """
    from django.utils import timezone

    now = timezone.localtime()
    left = 86400 - (now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6)
    if left < 60:
        time.sleep(left + 0.5)


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


# Personas: one workspace with an owner, an admin, a member and a viewer,
# and an outsider who owns a workspace of their own.
PERSONA_PASSWORD = "correct horse battery"


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.com", full_name="Olivia Owner")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin.member@example.com", full_name="Adam Admin")


@pytest.fixture
def member(make_user):
    return make_user("member@example.com", full_name="Mia Member")


@pytest.fixture
def viewer(make_user):
    return make_user("viewer@example.com", full_name="Victor Viewer")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider@example.com", full_name="Oscar Outsider")


@pytest.fixture
def workspace(owner, admin_user, member, viewer):
    from workspaces.models import Membership, Workspace

    ws = Workspace.objects.create(name="Acme Research", slug="acme", created_by=owner)
    for user, role in [(owner, "owner"), (admin_user, "admin"), (member, "member"), (viewer, "viewer")]:
        Membership.objects.create(workspace=ws, user=user, role=role)
    return ws


@pytest.fixture
def other_workspace(outsider):
    from workspaces.models import Membership, Workspace

    ws = Workspace.objects.create(name="Globex Secret", slug="globex", created_by=outsider)
    Membership.objects.create(workspace=ws, user=outsider, role="owner")
    return ws


@pytest.fixture
def personas(owner, admin_user, member, viewer, outsider):
    return {"owner": owner, "admin": admin_user, "member": member, "viewer": viewer, "outsider": outsider}


@pytest.fixture
def client_for():
    """A signed-in page client for a user."""
    from django.test import Client

    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def api_client_for():
    """A DRF API client authenticated with a token of the user."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make
