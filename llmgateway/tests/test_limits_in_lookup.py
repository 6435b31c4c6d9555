"""Limits checked in the cache lookup's round trip (metering.limits.Ahead), on real Redis."""

import pytest

from llmgateway.cache.store import RedisStore, get_store
from llmgateway.metering import records
from llmgateway.models import Limit, UsageRecord


def ask(text, **extra):
    return {"model": "remote", "messages": [{"role": "user", "content": text}], **extra}


def key_limits(api_key, **values):
    return Limit.objects.create(kind="key", workspace=api_key[0].workspace, api_key=api_key[0], **values)


@pytest.fixture
def round_trips(monkeypatch):
    """How many round trips the store made to Redis (each `_pipe` is one write and its replies)."""
    counted = []
    real = RedisStore._pipe

    def counting(self, commands, settle=True):
        counted.append([command[0] for command in commands])
        return real(self, commands, settle)

    monkeypatch.setattr(RedisStore, "_pipe", counting)
    return counted


def test_a_hit_with_limits_is_one_round_trip(redis_cache, v1, api_key, remote_model, upstream, round_trips):
    assert isinstance(get_store(), RedisStore)
    key_limits(api_key, rpm=6, tpm=100_000)
    v1(ask("once"))  # the miss, and the key's first request: its limits are learnt
    v1(ask("once"))
    round_trips.clear()
    response = v1(ask("once"))
    assert response["X-Cache"] == "HIT"
    # The lookup (MGET) and the admission script (EVALSHA) leave in one write.
    assert round_trips == [["MGET", "EVALSHA"]]
    assert response["x-ratelimit-remaining-requests"] == "3"


def test_sixty_per_minute_on_redis_counts_each_request_once(redis_cache, v1, api_key, remote_model, upstream):
    key_limits(api_key, rpm=60)
    seen = [v1(ask("same"))]
    while seen[-1].status_code == 200 and len(seen) < 100:
        seen.append(v1(ask("same")))
    refused = seen.pop()
    assert 60 <= len(seen) <= 62  # a slow machine earns one more per second
    assert [r["x-ratelimit-remaining-requests"] for r in seen[:4]] == ["59", "58", "57", "56"]
    assert refused.status_code == 429 and refused["Retry-After"]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert upstream.calls == 1
    records.drain()
    assert UsageRecord.objects.filter(cache="refused").count() == 1


def test_misses_reserve_their_tokens_on_top_without_counting_twice(redis_cache, v1, api_key, remote_model, upstream):
    key_limits(api_key, rpm=5, tpm=100_000)
    remaining = [v1(ask(f"new question {i}"))["x-ratelimit-remaining-requests"] for i in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]
    assert v1(ask("one more")).status_code == 429
    assert upstream.calls == 5


def test_a_miss_refused_for_tokens_gives_its_request_back(redis_cache, v1, api_key, remote_model, upstream):
    key_limits(api_key, rpm=3, tpm=1)
    first = v1(ask("x", max_tokens=5))  # admitted while a token is left; the bucket is then spent
    assert first.status_code == 200 and first["x-ratelimit-remaining-requests"] == "2"
    refused = v1(ask("y", max_tokens=5))  # reserved with the lookup, then refused for its tokens
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"
    hit = v1(ask("x", max_tokens=5))
    assert hit["X-Cache"] == "HIT"
    # The refused miss's request was given back: two left before this hit, one after.
    assert hit["x-ratelimit-remaining-requests"] == "1"
    assert upstream.calls == 1


def test_limits_changed_since_the_last_request_are_applied_at_once(redis_cache, v1, api_key, remote_model, upstream):
    key_limits(api_key, rpm=5)
    assert v1(ask("q"))["x-ratelimit-remaining-requests"] == "4"
    assert v1(ask("q"))["x-ratelimit-remaining-requests"] == "3"
    Limit.objects.create(kind="workspace", workspace=api_key[0].workspace, rpm=100)
    # Reserved ahead on the key alone, then given back and admitted on the workspace and the key.
    response = v1(ask("q"))
    assert response.status_code == 200 and response["X-Cache"] == "HIT"
    assert response["x-ratelimit-remaining-requests"] == "2"
    assert v1(ask("q"))["x-ratelimit-remaining-requests"] == "1"


def test_a_request_refused_before_its_limits_gives_its_request_back(
    redis_cache, v1, api_key, remote_model, upstream, client
):
    key_limits(api_key, rpm=3)
    assert v1(ask("q"))["x-ratelimit-remaining-requests"] == "2"
    # Reserved with the lookup, then refused for its model: the reservation is given back.
    assert v1({"model": "no-such-model", "messages": [{"role": "user", "content": "q"}]}).status_code == 404
    remote_model.enabled = False
    remote_model.save()
    assert v1(ask("q")).status_code == 404
    remote_model.enabled = True
    remote_model.save()
    assert v1(ask("q"))["x-ratelimit-remaining-requests"] == "1"


def test_the_python_api_admits_a_hit_in_its_lookup_round_trip(
    redis_cache, workspace, member, remote_model, round_trips
):
    from llmgateway import gateway

    Limit.objects.create(kind="user", workspace=workspace, user=member, rpm=4)
    gateway.complete(workspace, ask("from a chat page"), user=member, origin="chat")  # the user's limits are learnt
    round_trips.clear()
    result = gateway.complete(workspace, ask("from a chat page"), user=member, origin="chat")
    assert result.cache_hit
    # The model's spec (its own read), then the lookup and the admission script in one write.
    assert round_trips == [["MGET"], ["MGET", "EVALSHA"]]
    assert result.ratelimit["x-ratelimit-remaining-requests"] == "2"
    result = gateway.complete(workspace, ask("from a chat page"), user=member, origin="chat")
    assert result.ratelimit["x-ratelimit-remaining-requests"] == "1"


def test_the_python_api_counts_a_request_once_and_refuses_the_one_over(
    redis_cache, workspace, member, remote_model, upstream
):
    from llmgateway import gateway
    from llmgateway.gateway import GatewayError

    Limit.objects.create(kind="user", workspace=workspace, user=member, rpm=3)
    remaining = [
        gateway.complete(workspace, ask(f"question {i}"), user=member).ratelimit["x-ratelimit-remaining-requests"]
        for i in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(GatewayError) as refused:
        gateway.complete(workspace, ask("question 0"), user=member)
    assert refused.value.status == 429
    assert upstream.calls == 3


def test_the_python_api_gives_back_a_request_refused_before_its_limits(redis_cache, workspace, member, remote_model):
    from llmgateway import gateway
    from llmgateway.gateway import GatewayError

    Limit.objects.create(kind="user", workspace=workspace, user=member, rpm=3)
    assert gateway.complete(workspace, ask("q"), user=member).ratelimit["x-ratelimit-remaining-requests"] == "2"
    workspace.archived = True
    workspace.save()
    with pytest.raises(GatewayError) as refused:
        gateway.complete(workspace, ask("q"), user=member)
    assert refused.value.status == 403
    workspace.archived = False
    workspace.save()
    assert gateway.complete(workspace, ask("q"), user=member).ratelimit["x-ratelimit-remaining-requests"] == "1"


def test_a_raised_limit_keeps_what_was_used_and_no_more(redis_cache, workspace, member, remote_model):
    from llmgateway import gateway

    limit = Limit.objects.create(kind="user", workspace=workspace, user=member, rpm=3)
    assert gateway.complete(workspace, ask("q"), user=member).ratelimit["x-ratelimit-remaining-requests"] == "2"
    limit.rpm = 60
    limit.save()
    # Reserved ahead under the old limit, given back, admitted under the new one: 2 of 60 used, not 58.
    assert gateway.complete(workspace, ask("q"), user=member).ratelimit["x-ratelimit-remaining-requests"] == "58"
