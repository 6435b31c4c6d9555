"""One deadline per request: hanging, trickling and stalling upstreams, retries, fallbacks, coalescing locks.

Every upstream here is the real local OpenAI-compatible server; the bounds
asserted are the behaviour under test (a 504 by the deadline), with a margin.
"""

import json
import threading
import time
import uuid

import pytest

from llmgateway import gateway, registry
from llmgateway.cache import coalesce
from llmgateway.cache.entries import load_workspace_info, lock_key
from llmgateway.models import ModelConfig
from llmgateway.tests.test_coalescing import redis_store  # noqa: F401  (fixture)

REQUEST = {"model": "remote", "messages": [{"role": "user", "content": "Status?"}]}
LONG_QUESTION = " ".join(f"word{i}" for i in range(40))
MARGIN = 1.5  # seconds past the deadline that the answer may take to arrive (on a busy machine)


def _timed(function):
    started = time.monotonic()
    value = function()
    return value, time.monotonic() - started


def _wait_for(condition, seconds=5.0):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _events(response):
    """The server-sent events of a streamed response: parsed JSON, or the string "[DONE]"."""
    events = []
    for part in response.streaming_content:
        for line in part.decode().splitlines():
            if line.startswith("data: "):
                data = line[6:]
                events.append(data if data == "[DONE]" else json.loads(data))
    response.close()
    return events


def _deadline_error(response):
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "deadline_exceeded" and error["type"] == "api_error"
    return error


# Non-streamed ----------------------------------------------------------------


def test_a_hanging_upstream_is_answered_504_by_the_deadline(v1, remote_model, upstream, settings):
    settings.LLM_DEADLINE_SECONDS = 2  # the model: timeout 5 s, 2 retries
    upstream.script("hang", "hang", "hang")
    response, elapsed = _timed(lambda: v1(REQUEST))
    _deadline_error(response)
    assert elapsed < 2 + MARGIN
    # No retry was started without time for it, and the upstream connection was closed.
    assert upstream.calls == 1
    assert _wait_for(lambda: upstream.disconnects == 1)


def test_a_models_own_deadline_overrides_the_default(v1, remote_model, upstream, settings):
    settings.LLM_DEADLINE_SECONDS = 100
    remote_model.deadline_seconds = 2
    remote_model.save()
    upstream.script("hang", "hang", "hang")
    response, elapsed = _timed(lambda: v1(REQUEST))
    _deadline_error(response)
    assert elapsed < 2 + MARGIN


def test_a_trickling_answer_stops_at_the_deadline(v1, remote_model, upstream, settings):
    settings.LLM_DEADLINE_SECONDS = 2
    upstream.script("trickle")  # one byte every 0.5 s for 10 s: each read is quick, the whole is not
    response, elapsed = _timed(lambda: v1(REQUEST))
    _deadline_error(response)
    assert elapsed < 2 + MARGIN
    assert _wait_for(lambda: upstream.disconnects == 1)


def test_the_model_timeout_bounds_each_attempt_as_a_whole(workspace, remote_model, upstream, settings):
    remote_model.timeout_seconds = 1
    remote_model.max_retries = 0
    remote_model.save()
    upstream.script("trickle")
    with pytest.raises(gateway.GatewayError) as caught:
        gateway.complete(workspace, REQUEST)
    assert (caught.value.status, caught.value.code) == (504, "upstream_timeout")


def test_retries_stop_when_the_deadline_leaves_no_room(v1, remote_model, upstream, settings):
    settings.LLM_DEADLINE_SECONDS = 3
    remote_model.timeout_seconds = 1
    remote_model.max_retries = 5
    remote_model.save()
    upstream.script(*["hang"] * 6)
    response, elapsed = _timed(lambda: v1(REQUEST))
    assert response.status_code == 504
    assert elapsed < 3 + MARGIN
    # Two attempts of 1 s; a third would start with less than a second left.
    assert upstream.calls == 2


def test_no_back_off_is_slept_past_the_deadline(v1, remote_model, upstream, settings):
    settings.LLM_DEADLINE_SECONDS = 2
    upstream.script((429, {"Retry-After": "3"}))
    response, elapsed = _timed(lambda: v1(REQUEST))
    assert response.status_code == 429 and response["Retry-After"] == "3"
    assert elapsed < 2  # at once: the 3 s Retry-After would overrun the deadline
    assert upstream.calls == 1


def test_no_fallback_is_started_after_the_deadline(v1, remote_model, upstream, settings):
    settings.LLM_DEADLINE_SECONDS = 2
    remote_model.max_retries = 0
    remote_model.fallback = ModelConfig.objects.create(
        name="backup", provider="openai-compatible", base_url=upstream.base_url, upstream_model="backup-model"
    )
    remote_model.save()
    upstream.script("hang", "hang")
    response, elapsed = _timed(lambda: v1(REQUEST))
    _deadline_error(response)
    assert elapsed < 2 + MARGIN
    assert [r["model"] for r in upstream.requests] == ["fake-model"]


# Streamed --------------------------------------------------------------------


def test_a_stream_that_stalls_after_its_first_chunk_ends_with_an_error_event(v1, remote_model, upstream, settings):
    settings.LLM_STREAM_IDLE_SECONDS = 1
    upstream.script("stall")
    (response, events), elapsed = _timed(lambda: (lambda r: (r, _events(r)))(v1(dict(REQUEST, stream=True))))
    assert response.status_code == 200
    assert events[0]["object"] == "chat.completion.chunk"
    assert events[-1]["error"]["code"] == "stream_idle_timeout"
    assert "[DONE]" not in events
    assert elapsed < 1 + MARGIN
    assert _wait_for(lambda: upstream.disconnects == 1)


def test_a_stalled_streams_error_says_how_long_it_waited(v1, remote_model, upstream, settings):
    """The model's own timeout, shorter than LLM_STREAM_IDLE_SECONDS, ends the wait: the message says so."""
    settings.LLM_STREAM_IDLE_SECONDS = 30
    remote_model.timeout_seconds = 1
    remote_model.max_retries = 0
    remote_model.save()
    upstream.script("stall")
    events = _events(v1(dict(REQUEST, stream=True)))
    assert events[-1]["error"]["code"] == "stream_idle_timeout"
    assert "30 s" not in events[-1]["error"]["message"]


def test_a_slow_stream_is_cut_at_the_deadline(v1, remote_model, upstream, settings):
    settings.LLM_DEADLINE_SECONDS = 2
    upstream.chunk_delay = 0.3  # never idle, but 40 words take 12 s
    request = {"model": "remote", "stream": True, "messages": [{"role": "user", "content": LONG_QUESTION}]}
    (response, events), elapsed = _timed(lambda: (lambda r: (r, _events(r)))(v1(request)))
    assert response.status_code == 200
    assert len(events) > 3
    assert events[-1]["error"]["code"] == "deadline_exceeded"
    assert elapsed < 2 + MARGIN


def test_a_stream_that_never_starts_is_a_504(v1, remote_model, upstream, settings):
    settings.LLM_DEADLINE_SECONDS = 2
    upstream.script("hang", "hang", "hang")
    response, elapsed = _timed(lambda: v1(dict(REQUEST, stream=True)))
    _deadline_error(response)
    assert elapsed < 2 + MARGIN


def test_a_client_that_leaves_mid_stream_hangs_up_on_the_upstream(v1, remote_model, upstream):
    upstream.chunk_delay = 0.2
    response = v1({"model": "remote", "stream": True, "messages": [{"role": "user", "content": LONG_QUESTION}]})
    parts = iter(response.streaming_content)
    next(parts), next(parts)
    response.close()
    assert _wait_for(lambda: upstream.disconnects == 1)


# Coalescing ------------------------------------------------------------------


def _request(extra_text=""):
    return {"model": "remote", "messages": [{"role": "user", "content": "Summarise the report" + extra_text}]}


@pytest.fixture
def ready(workspace, remote_model):
    """Spec and workspace info cached, so threads need no database."""
    load_workspace_info(workspace.pk)
    return registry.get_spec("remote")


@pytest.fixture
def shared(workspace, ready, redis_store):  # noqa: F811
    """Redis as the store (as with several workers), with the workspace's info in it; the model spec."""
    load_workspace_info(workspace.pk)
    return ready


def _lead_in_a_thread(workspace, spec, upstream, extra=None):
    """Start a leader whose upstream hangs; returns (thread, outcome list)."""
    outcome = []

    def run():
        try:
            outcome.append(gateway.complete(workspace.pk, _request(), spec=spec, cache_extra=extra))
        except gateway.GatewayError as exc:
            outcome.append(exc)

    upstream.script("hang")
    leader = threading.Thread(target=run)
    leader.start()
    assert _wait_for(lambda: upstream.calls == 1)
    return leader, outcome


def _follower_gives_up_by_its_deadline(workspace, spec, upstream, settings, extra=None, other_worker=False):
    settings.LLM_COALESCE_WAIT = 30
    settings.LLM_DEADLINE_SECONDS = 10
    leader, outcome = _lead_in_a_thread(workspace, spec, upstream, extra)
    if other_worker:
        coalesce.reset()  # as if the follower ran in another worker: only the Redis lock is shared
    settings.LLM_DEADLINE_SECONDS = 1  # the follower's own deadline
    try:
        started = time.monotonic()
        with pytest.raises(gateway.GatewayError) as caught:
            gateway.complete(workspace.pk, _request(), spec=spec, cache_extra=extra)
        assert (caught.value.status, caught.value.code) == (504, "deadline_exceeded")
        assert time.monotonic() - started < 1 + MARGIN
    finally:
        upstream.release()
        leader.join(10)
    # The follower made no call of its own; the leader still got its answer.
    assert upstream.calls == 1
    assert outcome and outcome[0].text.startswith("Echo:")


def test_a_follower_gives_up_by_its_own_deadline(workspace, ready, upstream, settings):
    _follower_gives_up_by_its_deadline(workspace, ready, upstream, settings)


def test_a_follower_in_another_worker_gives_up_by_its_own_deadline(workspace, shared, upstream, settings):
    _follower_gives_up_by_its_deadline(workspace, shared, upstream, settings, extra=uuid.uuid4().hex, other_worker=True)


def test_the_coalescing_lock_lives_as_long_as_the_deadline(workspace, shared, upstream, settings, redis_store):  # noqa: F811
    settings.LLM_DEADLINE_SECONDS = 2
    extra = uuid.uuid4().hex
    key = gateway.prepare(workspace.pk, _request(), spec=shared, cache_extra=extra).key
    leader, outcome = _lead_in_a_thread(workspace, shared, upstream, extra)
    ttl = redis_store.client.ttl(lock_key(key))
    leader.join(10)
    assert 0 < ttl <= 2 + 10
    assert isinstance(outcome[0], gateway.GatewayError) and outcome[0].code == "deadline_exceeded"
    assert not redis_store.exists(lock_key(key))


def test_a_stream_dropped_unread_releases_its_flight(workspace, shared, upstream, redis_store):  # noqa: F811
    extra = uuid.uuid4().hex
    key = gateway.prepare(workspace.pk, _request(), spec=shared, cache_extra=extra).key
    stream = gateway.stream(workspace.pk, _request(), spec=shared, cache_extra=extra)
    assert not stream.coalesced and redis_store.exists(lock_key(key))
    del stream  # e.g. the page's client left before the first chunk was read
    assert not redis_store.exists(lock_key(key))
    again = gateway.stream(workspace.pk, _request(), spec=shared, cache_extra=extra)
    assert not again.coalesced
    assert list(again) and again.result.text.startswith("Echo:")


def test_a_closed_stream_releases_its_flight(workspace, ready, upstream):
    stream = gateway.stream(workspace.pk, _request(), spec=ready)
    stream.close()
    again = gateway.stream(workspace.pk, _request(), spec=ready)
    assert not again.coalesced
    again.close()


def test_an_answer_with_malformed_usage_is_served_and_closes_its_flight(workspace, ready, upstream, settings):
    settings.LLM_COALESCE_WAIT = 30
    upstream.usage_reply = "lots"
    first = gateway.complete(workspace.pk, _request(), spec=ready)
    # Its usage is counted from the text, for the client as for the budgets.
    usage = first.response["usage"]
    assert first.text.startswith("Echo:") and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # A flight left open would make this identical request wait on it for LLM_COALESCE_WAIT.
    assert gateway.complete(workspace.pk, _request(), spec=ready).cache_hit


# Where the deadline is set and shown ------------------------------------------


def test_add_model_sets_and_clears_a_models_deadline(db):
    from django.core.management import call_command

    call_command("add_model", "m1", "--base-url", "http://127.0.0.1:9/v1", "--upstream-model", "m", "--deadline", "45")
    assert ModelConfig.objects.get().deadline_seconds == 45
    assert registry.get_spec("m1").deadline_seconds == 45
    call_command("add_model", "m1", "--deadline", "0")
    assert ModelConfig.objects.get().deadline_seconds is None


def test_the_models_page_shows_how_long_each_model_may_take(client_for, viewer, workspace, remote_model, settings):
    from django.urls import reverse

    settings.LLM_DEADLINE_SECONDS = 90
    ModelConfig.objects.create(name="slow", provider="offline", deadline_seconds=140)
    page = client_for(viewer).get(reverse("llmgateway:models", args=[workspace.slug])).content.decode()
    assert "Answers within" in page
    assert "90 s" in page and "140 s" in page
