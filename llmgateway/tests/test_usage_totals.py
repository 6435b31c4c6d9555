"""Hourly and daily usage totals: added up by the bulk writer, they agree with the records they summarise."""

import csv
import io
import itertools
import json
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from llmgateway import gateway
from llmgateway.metering import records, reports, totals
from llmgateway.models import ApiKey, Limit, UsageDay, UsageHour, UsageRecord

OUTCOMES = ("hit", "miss", "coalesced", "bypass", "error", "refused")


def generated(workspace, users, keys, count=600, days=9):
    """UsageRecord objects spread over the last `days` days, every hour of the day, every combination."""
    now = timezone.now()
    out = []
    for n in range(count):
        out.append(
            UsageRecord(
                request_id=uuid.uuid4(),
                workspace=workspace,
                user=users[n % len(users)] if n % 5 else None,
                api_key=keys[n % len(keys)] if n % 3 else None,
                assistant_id=(n % 4) or None,
                origin="v1",
                model=("remote", "offline", "other")[n % 3],
                prompt_tokens=10 + n % 17,
                completion_tokens=n % 11,
                cost=Decimal("0.000125") * (n % 9),
                cache=OUTCOMES[n % len(OUTCOMES)],
                status=200,
                latency_ms=1.5 * (n % 4),
                created_at=now - timedelta(minutes=37 * n % (days * 24 * 60)),
            )
        )
    return out


def by_hand(rows, key):
    """What the totals should say, added up here from the records themselves."""
    out = defaultdict(Counter)
    for row in rows:
        group = out[key(row)]
        group["requests"] += 1
        group["hits"] += row.cache == "hit"
        group["prompt_tokens"] += row.prompt_tokens
        group["completion_tokens"] += row.completion_tokens
        group["cost"] += row.cost
    return out


@pytest.fixture
def keys(workspace, admin_user):
    return [ApiKey.create(workspace, f"k{n}", admin_user)[0] for n in range(2)]


@pytest.fixture
def load(workspace, admin_user, member, keys, remote_model, upstream):
    """Requests through the gateway (misses, hits, errors, a refusal) and stored history over nine days."""
    for n in range(40):
        gateway.complete(
            workspace,
            {"model": "offline", "messages": [{"role": "user", "content": f"q{n % 10}"}]},
            user=(member, admin_user)[n % 2],
            assistant=n % 3 or None,
        )
    upstream.script(500, 500, 500)
    with pytest.raises(gateway.GatewayError):
        gateway.complete(workspace, {"model": "remote", "messages": [{"role": "user", "content": "fails"}]})
    Limit.objects.create(kind="user", workspace=workspace, user=member, rpm=1)
    gateway.complete(workspace, {"model": "remote", "messages": [{"role": "user", "content": "one"}]}, user=member)
    with pytest.raises(gateway.GatewayError):
        gateway.complete(workspace, {"model": "remote", "messages": [{"role": "user", "content": "two"}]}, user=member)
    records.drain()
    totals.store(generated(workspace, [admin_user, member], keys))
    return list(UsageRecord.objects.all())


def test_hours_and_days_add_up_to_exactly_the_records(load, workspace):
    zone = timezone.get_current_timezone()
    assert len(load) == 40 + 1 + 2 + 600
    expected = by_hand(load, lambda r: (timezone.localtime(r.created_at, zone).date(), r.user_id or 0, r.cache))
    days = defaultdict(Counter)
    for row in UsageDay.objects.all():
        group = days[(row.day, row.user_id, row.cache)]
        group["requests"] += row.requests
        group["hits"] += row.requests if row.cache == "hit" else 0
        group["prompt_tokens"] += row.prompt_tokens
        group["completion_tokens"] += row.completion_tokens
        group["cost"] += row.cost
    assert days == expected
    hourly = by_hand(load, lambda r: timezone.localtime(r.created_at, zone).replace(minute=0, second=0, microsecond=0))
    stored = dict(UsageHour.objects.values("hour").annotate(n=Sum("requests")).values_list("hour", "n"))
    assert {timezone.localtime(h, zone): n for h, n in stored.items()} == {h: c["requests"] for h, c in hourly.items()}
    assert UsageHour.objects.aggregate(c=Sum("cost"))["c"] == sum(r.cost for r in load)


def test_page_csv_api_and_usage_report_agree_with_the_records(load, workspace, admin_user, client_for, api_client_for):
    zone = timezone.get_current_timezone()
    client = client_for(admin_user)
    for by, key in (
        ("model", lambda r: r.model),
        ("user", lambda r: r.user.email if r.user_id else "(no user)"),
        ("day", lambda r: timezone.localtime(r.created_at, zone).date().isoformat()),
        ("assistant", lambda r: r.assistant_id),
    ):
        expected = by_hand(load, key)
        page_csv = client.get(f"/gateway/acme/usage.csv?by={by}").content.decode()
        out = io.StringIO()
        call_command("usage_report", "acme", "--by", by, "--format", "csv", stdout=out)
        assert page_csv == out.getvalue()
        rows = list(csv.DictReader(io.StringIO(page_csv)))
        if by == "assistant":  # labelled by the assistants' names where they exist
            assert sorted(int(r["requests"]) for r in rows) == sorted(c["requests"] for c in expected.values())
            continue
        assert {r["label"]: int(r["requests"]) for r in rows} == {str(k): c["requests"] for k, c in expected.items()}
        assert {r["label"]: int(r["hits"]) for r in rows} == {str(k): c["hits"] for k, c in expected.items()}
        assert {r["label"]: Decimal(r["cost"]) for r in rows} == {str(k): c["cost"] for k, c in expected.items()}
    report = json.loads(io.StringIO(_run("usage_report", "acme", "--format", "json")).getvalue())
    assert int(report["total"]["requests"]) == len(load)
    assert int(report["total"]["tokens"]) == sum(r.prompt_tokens + r.completion_tokens for r in load)
    html = client.get("/gateway/acme/usage/").content.decode()
    assert f"<strong>{len(load)}</strong><span>requests</span>" in html
    summary = api_client_for(admin_user).get("/api/gateway/acme/usage/summary/?bucket=hour").json()
    assert summary["totals"]["requests"] == len(load) == sum(p["requests"] for p in summary["series"])
    assert len(summary["series"]) == 30 * 24 or len(summary["series"]) in (30 * 24 - 1, 30 * 24 + 1)  # DST days


def test_a_members_own_figures_and_the_api_filters(load, workspace, member, keys, api_client_for):
    mine = api_client_for(member).get("/api/gateway/acme/usage/summary/").json()
    assert mine["scope"] == "mine"
    assert mine["totals"]["requests"] == sum(1 for r in load if r.user_id == member.pk)
    admin = api_client_for(workspace.memberships.get(role="admin").user)
    for query, keep in (
        (f"api_key={keys[0].pk}", lambda r: r.api_key_id == keys[0].pk),
        ("model=other&cache=miss", lambda r: r.model == "other" and r.cache == "miss"),
        ("assistant=2", lambda r: r.assistant_id == 2),
    ):
        body = admin.get(f"/api/gateway/acme/usage/summary/?{query}").json()
        assert body["totals"]["requests"] == sum(1 for r in load if keep(r)), query
        listed = admin.get(f"/api/gateway/acme/usage/?{query}").json()
        assert listed["count"] == body["totals"]["requests"]


def test_the_records_list_pages_by_position_through_every_record(load, admin_user, api_client_for):
    client = api_client_for(admin_user)
    seen, url = [], "/api/gateway/acme/usage/"
    while url:
        body = client.get(url).json()
        assert body["count"] == len(load)
        seen += [r["request_id"] for r in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == len(load)
    assert "cursor=" in client.get("/api/gateway/acme/usage/").json()["next"]
    bad = client.get("/api/gateway/acme/usage/?cursor=not-a-cursor")
    assert bad.status_code == 404 and "cursor" in bad.json()["detail"].lower()


def test_a_batch_written_twice_counts_once(workspace, admin_user, member, keys):
    batch = generated(workspace, [admin_user, member], keys, count=50)
    assert totals.store(batch) == 50
    before = list(UsageDay.objects.order_by("id").values())
    again = [
        UsageRecord(**{f.attname: getattr(r, f.attname) for f in UsageRecord._meta.fields if f.name != "id"})
        for r in batch
    ]
    assert totals.store(again) == 0
    assert list(UsageDay.objects.order_by("id").values()) == before
    assert UsageRecord.objects.count() == 50


@pytest.mark.usefixtures("no_stray_records")
def test_a_replayed_queue_is_stored_and_counted_once(workspace):
    """A drainer that wrote a batch and died before removing it: the next one finds it stored."""
    for n in range(5):
        gateway.complete(workspace, {"model": "offline", "messages": [{"role": "user", "content": f"r{n}"}]})
    records.flush()
    raws = records.get_store().head(records.queue_key(), 100)
    assert records._write(raws) == 5  # written, still queued
    assert records.drain() == 0
    assert UsageRecord.objects.count() == 5
    assert UsageDay.objects.aggregate(n=Sum("requests"))["n"] == 5


def test_rebuild_gives_what_the_writer_added_up(load, workspace):
    def snapshot():
        return sorted(
            (
                r["hour"],
                r["user_id"],
                r["api_key_id"],
                r["assistant_id"],
                r["model"],
                r["cache"],
                r["requests"],
                r["cost"],
            )
            for r in UsageHour.objects.values()
        ), sorted(
            (
                r["day"],
                r["user_id"],
                r["api_key_id"],
                r["assistant_id"],
                r["model"],
                r["cache"],
                r["requests"],
                r["cost"],
            )
            for r in UsageDay.objects.values()
        )

    written = snapshot()
    UsageDay.objects.update(requests=0)
    assert "Rebuilt" in _run("rebuild_usage_totals", "acme")
    assert snapshot() == written


def test_pruned_records_keep_their_totals(workspace, admin_user, member, keys, settings):
    old = generated(workspace, [admin_user, member], keys, count=100, days=3)
    for record in old:
        record.created_at -= timedelta(days=100)
    totals.store(old + generated(workspace, [member], keys, count=20, days=2))
    since = (timezone.localdate() - timedelta(days=110)).isoformat()
    before = _run("usage_report", "acme", "--since", since, "--format", "csv", "--by", "model")
    hours_left = UsageHour.objects.filter(hour__gte=timezone.now() - timedelta(days=10)).count()
    assert "Deleted 100 usage record(s)" in _run("prune_usage", "--days", "90")
    assert UsageRecord.objects.count() == 20
    assert UsageHour.objects.count() == hours_left  # hours of old days go; their days stay
    assert _run("usage_report", "acme", "--since", since, "--format", "csv", "--by", "model") == before


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York"])
def test_days_follow_the_time_zone_even_half_an_hour_off(zone, workspace, admin_user, member, keys, settings):
    settings.TIME_ZONE = zone
    rows = generated(workspace, [admin_user, member], keys, count=300, days=4)
    totals.store(rows)
    local = timezone.get_current_timezone()
    expected = by_hand(rows, lambda r: timezone.localtime(r.created_at, local).date())
    stored = dict(UsageDay.objects.values("day").annotate(n=Sum("requests")).values_list("day", "n"))
    assert stored == {day: c["requests"] for day, c in expected.items()}
    series = reports.series(reports.usage_for(None, workspace), "hour")
    assert sum(p["requests"] for p in series) == len(rows)


def test_summary_api_queries_are_constant(
    workspace, admin_user, member, keys, api_client_for, django_assert_num_queries
):
    client = api_client_for(admin_user)
    totals.store(generated(workspace, [admin_user, member], keys, count=10, days=2))
    client.get("/api/gateway/acme/usage/summary/?by=user")  # drains, warms the workspace's cached records
    # token and its user, memberships, workspace; the series (its points add up to the totals); the
    # breakdown; the users' names.
    with django_assert_num_queries(6) as small:
        client.get("/api/gateway/acme/usage/summary/?by=user")
    totals.store(generated(workspace, [admin_user, member], keys, count=2000, days=29))
    with django_assert_num_queries(len(small.captured_queries)):
        assert client.get("/api/gateway/acme/usage/summary/?by=user").json()["totals"]["requests"] == 2010


def _run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.usefixtures("no_stray_records")
def test_a_drain_stops_before_its_lock_expires_and_the_next_carries_on(workspace, monkeypatch):
    for n in range(35):
        gateway.complete(workspace, {"model": "offline", "messages": [{"role": "user", "content": f"d{n}"}]})
    records.flush()
    monkeypatch.setattr(records, "BATCH", 10)
    clock = itertools.count(0, 20)  # each look at the clock: 20 s later (the lock lasts 60)
    monkeypatch.setattr(records.time, "monotonic", lambda: next(clock))
    first = records.drain()
    assert 0 < first < 35  # stopped after a batch or two, well inside the lock's 60 s
    assert records.queued() == 35 - first
    while records.queued():
        records.drain()
    assert UsageRecord.objects.count() == 35
    assert UsageDay.objects.aggregate(n=Sum("requests"))["n"] == 35


def test_csv_and_records_list_queries_are_constant(
    workspace, admin_user, member, keys, client_for, api_client_for, django_assert_num_queries
):
    page, api = client_for(admin_user), api_client_for(admin_user)
    totals.store(generated(workspace, [admin_user, member], keys, count=10, days=2))
    page.get("/gateway/acme/usage.csv?by=user")
    api.get("/api/gateway/acme/usage/")
    # user (session cached), memberships, workspace; the breakdown; the users' names.
    with django_assert_num_queries(5) as csv_small:
        page.get("/gateway/acme/usage.csv?by=user")
    # token and its user, memberships, workspace; the count (from the totals); a page of records with users.
    with django_assert_num_queries(5) as list_small:
        api.get("/api/gateway/acme/usage/")
    totals.store(generated(workspace, [admin_user, member], keys, count=3000, days=29))
    with django_assert_num_queries(len(csv_small.captured_queries)):
        assert page.get("/gateway/acme/usage.csv?by=user").status_code == 200
    with django_assert_num_queries(len(list_small.captured_queries)):
        body = api.get("/api/gateway/acme/usage/").json()
        assert body["count"] == 3010 and len(body["results"]) == 50


def test_staff_see_the_totals_in_the_admin(workspace, admin_user, member, keys, client, django_user_model):
    totals.store(generated(workspace, [admin_user, member], keys, count=60, days=3))
    staff = django_user_model.objects.create_superuser(email="staff@example.com", password="pw-123-long-enough")
    client.force_login(staff)
    for url in ("/admin/llmgateway/usagehour/", "/admin/llmgateway/usageday/", "/admin/llmgateway/usageday/?cache=hit"):
        page = client.get(url)
        assert page.status_code == 200 and "Acme Research" in page.content.decode(), url
    assert client.get("/admin/llmgateway/usagehour/add/").status_code == 403  # written by the bulk writer only


def test_summary_queries_are_the_same_with_no_usage_yet(workspace, admin_user, member, keys, api_client_for):
    client = api_client_for(admin_user)
    client.get("/api/gateway/acme/usage/summary/?by=user")
    with CaptureQueriesContext(connection) as empty:
        assert client.get("/api/gateway/acme/usage/summary/?by=user").json()["totals"]["requests"] == 0
    totals.store(generated(workspace, [admin_user, member], keys, count=10, days=2))
    with CaptureQueriesContext(connection) as some:
        assert client.get("/api/gateway/acme/usage/summary/?by=user").json()["totals"]["requests"] == 10
    assert len(some.captured_queries) == len(empty.captured_queries)
