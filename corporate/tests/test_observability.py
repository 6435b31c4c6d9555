"""Query timing per request, the slow-query log and its origins, and /metrics in one process.

Multiprocess metrics under real gunicorn: deploy/tests/test_metrics_gunicorn.py.
"""

import logging

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from corporate.observability import metrics, queries, timeline

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def slow_log(caplog):
    caplog.set_level(logging.WARNING, logger="corporate.slow_queries")
    queries.forget_slowest()
    return caplog


def slow_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "corporate.slow_queries"]


def server_timing_db(response):
    """(queries, ms) from the response's `db` Server-Timing entry."""
    [entry] = [e.strip() for e in response["Server-Timing"].split(",") if e.strip().startswith("db;")]
    parts = dict(p.split("=", 1) for p in entry.split(";")[1:])
    return int(parts["desc"].strip('"').split()[0]), float(parts["dur"])


def test_server_timing_counts_the_requests_queries(client_for, owner, workspace):
    client = client_for(owner)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("workspaces:list"))
    assert response.status_code == 200
    count, ms = server_timing_db(response)
    assert count == len(captured) and count > 0
    assert ms > 0
    # What gunicorn's access log prints (deploy/gunicorn.conf.py).
    assert response.wsgi_request.META["corporate.db_queries"] == count


def test_a_request_without_queries_says_zero(client, db):
    response = client.get("/static/css/app.css")
    response = client.get(reverse("login"))
    count, _ = server_timing_db(response)
    assert count == 0


def test_slow_queries_are_logged_once_with_origin_and_no_parameters(client_for, owner, workspace, settings, slow_log):
    settings.DB_SLOW_QUERY_MS = 0  # every query counts as slow
    secret = "salary-of-the-ceo-4711"
    client = client_for(owner)
    slow_log.clear()
    response = client.get(reverse("documents:search", args=[workspace.slug]), {"q": secret})
    assert response.status_code == 200
    lines = slow_lines(slow_log)
    count, _ = server_timing_db(response)
    assert len(lines) == count  # once per query
    assert all(secret not in line and "4711" not in line for line in lines)
    assert any("from view documents:search:" in line for line in lines)
    assert all(line.startswith("slow query: ") and " ms from " in line for line in lines)
    # The slowest recent queries are kept for the System page, also redacted.
    kept = queries.slowest()
    assert kept and all(secret not in e["sql"] for e in kept)
    assert any(e["origin"] == "view documents:search" for e in kept)


def test_fast_queries_are_not_logged(client_for, owner, workspace, settings, slow_log):
    settings.DB_SLOW_QUERY_MS = 10_000
    client_for(owner).get(reverse("workspaces:list"))
    assert slow_lines(slow_log) == []


def test_a_slow_query_is_logged(db, settings, slow_log):
    settings.DB_SLOW_QUERY_MS = 50
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_sleep(0.06), 'literal secret'")
        else:
            # SQLite has no sleep: a query made slow by work.
            cursor.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
                "SELECT count(*), 'literal secret' FROM n"
            )
    [line] = slow_lines(slow_log)
    assert "'?'" in line and "literal secret" not in line
    assert "3000000" not in line


def test_the_origin_of_a_command_and_of_a_task(db, settings, slow_log, monkeypatch):
    settings.DB_SLOW_QUERY_MS = 0
    monkeypatch.setattr(queries, "_process_origin", None)
    monkeypatch.setattr("sys.argv", ["manage.py", "list_workspaces"])
    call_command("list_workspaces", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert any(" ms from command list_workspaces: " in line for line in slow_lines(slow_log))
    slow_log.clear()

    from documents.tasks import ingest_document

    ingest_document.enqueue(987654)  # no such document: the task looks it up and stops
    assert any(" ms from task documents.tasks.ingest_document: " in line for line in slow_lines(slow_log))


def test_redact_replaces_literals_and_shortens_parameter_lists():
    sql = "SELECT * FROM t WHERE a = 'x''y' AND b IN (%s, %s, %s) AND c > 42 AND t2.d = %s LIMIT 21"
    assert queries.redact(sql) == "SELECT * FROM t WHERE a = '?' AND b IN (%s, ...) AND c > ? AND t2.d = %s LIMIT ?"


def test_timeline_adds_up_requests_per_minute(client_for, owner, workspace):
    timeline.forget()
    before = timeline.minutes(last=2)[-1]
    client = client_for(owner)
    for _ in range(3):
        client.get(reverse("workspaces:list"))
    after = timeline.minutes(last=2)[-1]
    if after["minute"] == before["minute"]:
        assert after["requests"] - before["requests"] == 3
        assert after["queries"] > before["queries"]


# /metrics


def metric_value(text, name, **labels):
    """The value of one sample in the Prometheus text format, 0 when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0


def scrape(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:200]
    return response.content.decode()


def test_metrics_are_off_without_a_token(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Token {TOKEN}", "Bearer"])
def test_metrics_need_the_token(client, db, settings, header):
    settings.METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"corporate_" not in response.content


def test_metrics_count_requests_by_route_never_by_path(client, client_for, owner, workspace, settings):
    settings.METRICS_TOKEN = TOKEN
    page = client_for(owner)
    before = scrape(client)
    page.get(reverse("workspaces:list"))
    page.get(reverse("workspaces:list"))
    page.get("/no-such-page-carrying-user-input-xyzzy/")
    after = scrape(client)
    name = "corporate_http_request_duration_seconds_count"
    labels = {"route": "workspaces:list", "method": "GET", "status": "200"}
    assert metric_value(after, name, **labels) - metric_value(before, name, **labels) == 2
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert metric_value(after, name, **unmatched) - metric_value(before, name, **unmatched) == 1
    assert "xyzzy" not in after
    queries_sum = "corporate_db_queries_per_request_sum"
    assert metric_value(after, queries_sum, route="workspaces:list") > metric_value(
        before, queries_sum, route="workspaces:list"
    )
    assert metric_value(after, "corporate_task_queue_depth") == 0
    assert "corporate_completion_cache_requests" in after


def test_a_made_up_method_is_not_a_label(client, db, settings):
    settings.METRICS_TOKEN = TOKEN
    client.generic("FROBNICATE", reverse("login"))
    assert 'method="FROBNICATE"' not in scrape(client)
    assert 'method="other"' in scrape(client)


def test_metrics_view_is_cheap_when_off(settings):
    settings.METRICS_TOKEN = ""
    assert metrics.enabled() is False
