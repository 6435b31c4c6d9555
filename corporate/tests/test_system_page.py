"""The System page (staff) and `manage.py dbstats`: health, pools, slowest queries, caches, the last hour."""

import io
import os

import pytest
from django.core.management import call_command
from django.urls import reverse

from corporate.backends.postgresql import base as pg
from corporate.backends.postgresql.pool import ConnectionPool
from corporate.observability import queries, timeline


@pytest.fixture
def staff(make_user):
    return make_user("ops@example.com", is_staff=True)


@pytest.fixture(autouse=True)
def _clean():
    queries.forget_slowest()
    timeline.forget()


class Conn:
    closed = 0

    def close(self):
        self.closed = 1


@pytest.fixture
def a_pool(monkeypatch):
    """A pool of this process with one connection in use and one request that waited for it."""
    pool = ConnectionPool(size=4, timeout=1, max_age=60)
    pool.acquire(Conn)
    pool.waits_total, pool.wait_seconds_total = 1, 0.25
    monkeypatch.setitem(pg._pools, (os.getpid(), "db", "", "", "u"), pool)
    return pool


def test_staff_only(client, client_for, owner):
    assert client.get(reverse("system")).status_code == 302  # to sign-in
    response = client_for(owner).get(reverse("system"))
    assert response.status_code == 403
    assert b"for staff" in response.content


def test_the_page_shows_health_pools_slow_queries_and_the_hour(client_for, staff, settings, a_pool, monkeypatch):
    from llmgateway.models import ModelConfig

    ModelConfig.objects.create(name="answering", provider="offline")
    ModelConfig.objects.create(name="flaky", provider="offline")
    timeline.upstream_outcome("answering", latency_ms=12.3)
    timeline.upstream_outcome("flaky", error="upstream_timeout")
    client = client_for(staff)
    monkeypatch.setattr(pg, "all_pools", lambda: [a_pool])
    settings.DB_SLOW_QUERY_MS = 0
    client.get(reverse("workspaces:list"))  # its queries are all "slow"
    settings.DB_SLOW_QUERY_MS = 10_000
    response = client.get(reverse("system"))
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("Database", "Task workers", "Task queue", "Database connections", "Caches"):
        assert text in page
    assert "Model answering" in page and "in 12 ms" in page
    assert "Model flaky" in page and "last call failed" in page
    assert "from view workspaces:list" in page
    assert f"pid {os.getpid()}" in page and "0.25 s" in page
    # Seven charts of the last 60 minutes, with bars for this minute's requests.
    assert page.count("<svg") == 7 and "<rect" in page
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_the_page_makes_a_fixed_number_of_queries(client_for, staff, django_assert_num_queries):
    client = client_for(staff)
    client.get(reverse("system"))
    # the user (the session comes from the cache), SELECT 1 (database health), the task queue, the models.
    with django_assert_num_queries(4):
        assert client.get(reverse("system")).status_code == 200


def test_dbstats_prints_the_same(db, settings, a_pool, monkeypatch):
    monkeypatch.setattr(pg, "all_pools", lambda: [a_pool])
    settings.DB_SLOW_QUERY_MS = 0
    from workspaces.models import Workspace

    list(Workspace.objects.all())
    settings.DB_SLOW_QUERY_MS = 10_000
    out = io.StringIO()
    call_command("dbstats", stdout=out)
    text = out.getvalue()
    assert "Health" in text and "Database" in text
    assert "Slowest queries of the last hour" in text and '"workspaces_workspace"' in text
    assert "Database connections" in text and str(os.getpid()) in text
    assert "Requests (per minute)" in text
