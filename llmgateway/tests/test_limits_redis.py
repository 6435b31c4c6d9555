"""Limits and usage records on real Redis (a redis-server of the test's own), with concurrent requests."""

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client

from llmgateway import gateway
from llmgateway.metering import limits, records
from llmgateway.models import Limit, UsageDay, UsageRecord


def ask(text, **extra):
    return {"model": "remote", "messages": [{"role": "user", "content": text}], **extra}


def test_tokens_per_minute_on_redis(redis_cache, v1, api_key, remote_model, upstream):
    Limit.objects.create(kind="key", workspace=api_key[0].workspace, api_key=api_key[0], tpm=50)
    # Each request reserves its input and max_tokens (30), then settles what it used (about 15).
    codes = [v1(ask(f"question {i}", max_tokens=30)).status_code for i in range(6)]
    assert codes[:3] == [200, 200, 200] and 429 in codes
    refused = v1(ask("one more", max_tokens=30))
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens" and refused["x-ratelimit-limit-tokens"] == "50"
    assert int(refused["Retry-After"]) >= 1
    # The refusal is in the store, not in this process: Redis holds the bucket.
    assert redis_cache.client(9).keys(f"*gw:rl:key:{api_key[0].pk}:tk")


def test_settling_after_an_upstream_error_releases_the_reservation_on_redis(
    redis_cache, workspace, remote_model, upstream
):
    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=1, max_concurrent=1, tpm=100)
    scope = limits.scopes_for(
        workspace.pk, None, None, {"workspace": {"max_concurrent": 1, "tpm": 100, "daily_budget": 1_000_000}}, None
    )[0]
    upstream.script(500, 500, 500)
    with pytest.raises(gateway.GatewayError) as failed:
        gateway.complete(workspace, ask("fails", max_tokens=60))
    assert failed.value.status == 502
    state = limits.state_of(scope)
    # The estimate (60 answer tokens and the input, about $0.09) was reserved, and given back.
    assert state["daily_budget"]["used"] == 0
    assert state["max_concurrent"]["used"] == 0
    assert state["tpm"]["used"] == 0
    # The slot is free again: the next call is admitted.
    gateway.complete(workspace, ask("works", max_tokens=60))


@pytest.mark.django_db(transaction=True)
def test_a_thousand_concurrent_requests_add_up_exactly(redis_cache, api_key, remote_model, upstream):
    """1,000 requests from 8 clients, a tenth of them new questions: rows, outcomes, tokens and cost add up."""
    Limit.objects.create(kind="key", workspace=api_key[0].workspace, api_key=api_key[0], rpm=1_000_000)
    answers, lock = [], threading.Lock()

    def client_run(offset):
        client = Client()
        try:
            for n in range(offset, 1000, 8):
                response = client.post(
                    "/v1/chat/completions",
                    data={"model": "remote", "messages": [{"role": "user", "content": f"q{n % 100}"}]},
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
                )
                with lock:
                    answers.append(response)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client_run, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 1000 and {r.status_code for r in answers} == {200}
    outcomes = Counter(r["X-Cache"] for r in answers)
    records.drain()
    rows = UsageRecord.objects.filter(api_key=api_key[0])
    assert rows.count() == 1000
    stored = Counter(rows.values_list("cache", flat=True))
    assert stored["hit"] == outcomes["HIT"]
    assert stored["miss"] + stored["coalesced"] == 1000 - outcomes["HIT"] == upstream.calls + stored["coalesced"]
    usage = [r.json()["usage"] for r in answers]
    assert sum(r.prompt_tokens for r in rows) == sum(u["prompt_tokens"] for u in usage)
    assert sum(r.completion_tokens for r in rows) == sum(u["completion_tokens"] for u in usage)
    paid = rows.exclude(cache__in=["hit", "coalesced"])  # a shared upstream call is paid by its leader
    expected = sum(
        Decimal(r.prompt_tokens) * Decimal("0.0005") + Decimal(r.completion_tokens) * Decimal("0.0015") for r in paid
    )
    assert sum(r.cost for r in rows) == pytest.approx(expected, abs=Decimal("0.000001") * 1000)
    # The totals the pages read say the same.
    days = UsageDay.objects.filter(api_key_id=api_key[0].pk)
    assert sum(d.requests for d in days) == 1000
    assert sum(d.requests for d in days if d.cache == "hit") == outcomes["HIT"]
    assert sum(d.cost for d in days) == sum(r.cost for r in rows)
