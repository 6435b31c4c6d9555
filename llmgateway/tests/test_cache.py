"""The completion cache: keys, TTLs, workspace isolation, policies, controls and stream replay."""

import json
import time

import pytest

from llmgateway import gateway
from llmgateway.cache import stats
from llmgateway.cache.entries import canonical_request, completion_key
from llmgateway.gateway import GatewayError

BASE = {"model": "remote", "messages": [{"role": "user", "content": "What is the refund policy?"}]}


def _key(request, workspace_id=1, identity="remote|openai-compatible|m|u", extra=None):
    return completion_key(workspace_id, request, identity, extra)


class TestCacheKey:
    @pytest.mark.parametrize(
        "change",
        [
            {"messages": [{"role": "user", "content": "What is the refund policy? "}]},
            {"messages": [{"role": "system", "content": "Be brief."}, *BASE["messages"]]},
            {"temperature": 0.2},
            {"top_p": 0.5},
            {"max_tokens": 50},
            {"seed": 7},
            {"stop": ["\n"]},
            {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]},
            {"tool_choice": "none"},
            {"response_format": {"type": "json_object"}},
            {"n": 2},
            {"presence_penalty": 0.5},
        ],
    )
    def test_what_changes_the_answer_changes_the_key(self, change):
        assert _key(dict(BASE, **change)) != _key(BASE)

    @pytest.mark.parametrize(
        "same",
        [
            {"stream": True},
            {"stream_options": {"include_usage": True}},
            {"user": "someone-else"},
            {"metadata": {"trace": "abc"}},
            {"cache": {"ttl": 60}},
            {"temperature": 1.0},  # the default
            {"top_p": 1},
            {"n": 1},
        ],
    )
    def test_what_does_not_change_the_answer_keeps_the_key(self, same):
        assert _key(dict(BASE, **same)) == _key(BASE)

    def test_field_order_and_number_spelling_do_not_matter(self):
        a = {"temperature": 0.0, "messages": BASE["messages"], "model": "remote", "stop": "END"}
        b = {"model": "remote", "stop": ["END"], "messages": BASE["messages"], "temperature": 0}
        assert _key(a) == _key(b)
        assert canonical_request(a, "x") == canonical_request(b, "x")

    def test_workspace_model_upstream_and_extra_are_in_the_key(self):
        assert _key(BASE, workspace_id=1) != _key(BASE, workspace_id=2)
        assert _key(BASE, identity="remote|openai-compatible|m|u") != _key(
            BASE, identity="remote|openai-compatible|m2|u"
        )
        assert _key(BASE, extra={"assistant": 1, "version": 2}) != _key(BASE, extra={"assistant": 1, "version": 3})
        assert _key(BASE, extra={"a": 1, "b": 2}) == _key(BASE, extra={"b": 2, "a": 1})


def _without_id(answer):
    """An answer (or a streamed chunk) without its completion id, which is every answer's own."""
    return {k: v for k, v in answer.items() if k != "id"} if isinstance(answer, dict) else answer


def test_second_call_is_a_hit_with_the_same_answer(workspace, remote_model, upstream):
    first = gateway.complete(workspace, BASE)
    second = gateway.complete(workspace, BASE)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert _without_id(second.response) == _without_id(first.response)
    assert upstream.calls == 1
    assert second.usage == first.usage and second.cost == first.cost > 0
    summary = stats.summary(workspace.pk)
    assert (summary["hit"], summary["miss"], summary["hit_rate"]) == (1, 1, 0.5)
    assert summary["tokens_saved"] == first.usage["total_tokens"]
    assert summary["cost_saved"] == pytest.approx(first.cost)


def test_v1_reports_miss_then_hit(v1, remote_model, upstream):
    first = v1(BASE)
    second = v1(BASE)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert _without_id(first.json()) == _without_id(second.json())
    assert upstream.calls == 1


def test_every_answer_has_an_id_of_its_own_a_hit_included(v1, workspace, remote_model, upstream):
    """A client that keeps answers by their id (as OpenAI's are unique) never gets one twice from the cache."""
    answers = [v1(BASE) for _ in range(3)]
    assert [a["X-Cache"] for a in answers] == ["MISS", "HIT", "HIT"]
    ids = [a.json()["id"] for a in answers]
    assert len(set(ids)) == 3 and all(i.startswith("chatcmpl-") for i in ids), ids
    assert answers[1].content.startswith(b'{"id":"' + ids[1].encode() + b'"')  # the stored bytes, id swapped
    python = [gateway.complete(workspace, BASE).response["id"] for _ in range(2)]
    assert len(set(python + ids)) == 5


def test_a_hit_does_not_touch_the_database(v1, remote_model, upstream, django_assert_num_queries):
    assert v1(BASE)["X-Cache"] == "MISS"
    # Key info, model spec, workspace policy and the entry all come from the cache.
    with django_assert_num_queries(0):
        response = v1(BASE)
        assert response["X-Cache"] == "HIT"


def test_entries_expire_after_their_ttl(workspace, remote_model, upstream):
    gateway.complete(workspace, BASE, cache_control={"ttl": 3})  # a busy host may take a second between calls
    assert gateway.complete(workspace, BASE).cache_hit
    time.sleep(3.2)
    assert not gateway.complete(workspace, BASE).cache_hit
    assert upstream.calls == 2


def test_model_ttl_applies_when_the_request_sets_none(workspace, remote_model, upstream):
    remote_model.cache_ttl_seconds = 1
    remote_model.save()
    gateway.complete(workspace, BASE)
    time.sleep(1.2)
    assert not gateway.complete(workspace, BASE).cache_hit


def test_one_workspace_never_gets_anothers_answer(workspace, other_workspace, remote_model, upstream):
    mine = gateway.complete(workspace, BASE)
    theirs = gateway.complete(other_workspace, BASE)
    assert not theirs.cache_hit
    assert theirs.text != mine.text
    assert upstream.calls == 2
    assert gateway.complete(workspace, BASE).text == mine.text


def test_clearing_a_workspace_hides_only_its_entries(workspace, other_workspace, remote_model, upstream):
    from llmgateway.cache.entries import clear_workspace

    gateway.complete(workspace, BASE)
    gateway.complete(other_workspace, BASE)
    clear_workspace(workspace.pk)
    assert not gateway.complete(workspace, BASE).cache_hit
    assert gateway.complete(other_workspace, BASE).cache_hit


class TestCacheControls:
    def test_no_cache_header_skips_the_lookup_and_refreshes(self, v1, remote_model, upstream):
        first = v1(BASE).json()
        refreshed = v1(BASE, HTTP_CACHE_CONTROL="no-cache")
        assert refreshed["X-Cache"] == "MISS"
        assert refreshed.json()["choices"] != first["choices"]
        # The refreshed answer replaced the old one.
        assert _without_id(v1(BASE).json()) == _without_id(refreshed.json())
        assert upstream.calls == 2

    def test_no_store_header_keeps_the_answer_out(self, v1, remote_model, upstream):
        assert v1(BASE, HTTP_CACHE_CONTROL="no-store")["X-Cache"] == "MISS"
        assert v1(BASE)["X-Cache"] == "MISS"
        assert v1(BASE)["X-Cache"] == "HIT"
        assert upstream.calls == 2

    def test_no_store_still_reads_a_cached_answer(self, v1, remote_model, upstream):
        v1(BASE)
        assert v1(BASE, HTTP_CACHE_CONTROL="no-store")["X-Cache"] == "HIT"

    def test_body_cache_object(self, v1, remote_model, upstream):
        assert v1(dict(BASE, cache={"no-store": True}))["X-Cache"] == "MISS"
        assert v1(BASE)["X-Cache"] == "MISS"
        assert v1(dict(BASE, cache={"no-cache": True}))["X-Cache"] == "MISS"
        assert v1(dict(BASE, cache={"ttl": 60}))["X-Cache"] == "HIT"
        assert upstream.calls == 3

    @pytest.mark.parametrize(
        "cache, param",
        [
            ({"ttl": 0}, "cache.ttl"),
            ({"ttl": "soon"}, "cache.ttl"),
            ({"no-cache": "yes"}, "cache.no-cache"),
            ({"forever": True}, "cache.forever"),
            ("off", "cache"),
        ],
    )
    def test_bad_cache_object_is_a_400_naming_the_field(self, v1, remote_model, cache, param):
        response = v1(dict(BASE, cache=cache))
        assert response.status_code == 400
        assert response.json()["error"]["param"] == param


class TestPolicies:
    def _set(self, workspace, policy):
        workspace.cache_policy = policy
        workspace.save(update_fields=["cache_policy"])

    def test_none_caches_nothing(self, workspace, remote_model, upstream):
        self._set(workspace, "none")
        gateway.complete(workspace, BASE)
        assert not gateway.complete(workspace, BASE).cache_hit
        assert stats.summary(workspace.pk)["bypass"] == 2

    def test_deterministic_caches_only_temperature_zero_or_a_seed(self, workspace, remote_model, upstream):
        self._set(workspace, "deterministic")
        gateway.complete(workspace, BASE)
        assert not gateway.complete(workspace, BASE).cache_hit
        for extra in ({"temperature": 0}, {"seed": 42}):
            gateway.complete(workspace, dict(BASE, **extra))
            assert gateway.complete(workspace, dict(BASE, **extra)).cache_hit

    def test_tool_requests_follow_the_policy(self, workspace, remote_model, upstream):
        tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
        request = dict(BASE, tools=tools)
        gateway.complete(workspace, request)
        assert gateway.complete(workspace, request).cache_hit
        self._set(workspace, "deterministic")
        assert not gateway.complete(workspace, request).cache_hit

    def test_a_policy_change_applies_to_the_next_request(self, workspace, remote_model, upstream):
        gateway.complete(workspace, BASE)
        assert gateway.complete(workspace, BASE).cache_hit
        self._set(workspace, "none")
        assert not gateway.complete(workspace, BASE).cache_hit


def _sse(response):
    events = []
    for block in b"".join(response.streaming_content).decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def _content(chunks):
    return "".join(
        (c["choices"][0]["delta"].get("content") or "") for c in chunks if isinstance(c, dict) and c.get("choices")
    )


class TestStreaming:
    def test_a_streamed_completion_is_stored_and_replayed_as_the_same_chunks(self, v1, remote_model, upstream):
        first = v1(dict(BASE, stream=True))
        assert first["Content-Type"] == "text/event-stream"
        assert first["X-Cache"] == "MISS"
        live = _sse(first)
        assert live[-1] == "[DONE]"
        replay = v1(dict(BASE, stream=True))
        assert replay["X-Cache"] == "HIT"
        chunks = _sse(replay)
        assert [_without_id(c) for c in chunks] == [_without_id(c) for c in live]
        # The replay's chunks share one id of their own.
        replayed_ids = {c["id"] for c in chunks if isinstance(c, dict)}
        assert len(replayed_ids) == 1 and replayed_ids != {c["id"] for c in live if isinstance(c, dict)}
        assert upstream.calls == 1

    def test_a_streamed_answer_serves_a_plain_request_and_back(self, v1, remote_model, upstream):
        streamed = _content(_sse(v1(dict(BASE, stream=True))))
        plain = v1(BASE)
        assert plain["X-Cache"] == "HIT"
        assert plain.json()["choices"][0]["message"]["content"] == streamed
        other = dict(BASE, messages=[{"role": "user", "content": "Another question"}])
        text = v1(other).json()["choices"][0]["message"]["content"]
        replay = v1(dict(other, stream=True))
        assert replay["X-Cache"] == "HIT"
        assert _content(_sse(replay)) == text

    def test_usage_chunk_only_when_asked(self, v1, remote_model, upstream):
        without = _sse(v1(dict(BASE, stream=True)))
        assert not any(isinstance(c, dict) and c.get("usage") for c in without)
        with_usage = _sse(v1(dict(BASE, stream=True, stream_options={"include_usage": True})))
        assert with_usage[-2]["usage"]["total_tokens"] > 0

    def test_python_stream_yields_chunks_then_a_result(self, workspace, remote_model, upstream):
        stream = gateway.stream(workspace, BASE)
        assert stream.cache_hit is False
        chunks = list(stream)
        assert stream.result.text == _content(chunks)
        again = gateway.stream(workspace, BASE)
        assert again.cache_hit is True
        assert _content(list(again)) == stream.result.text
        assert again.result.cache_hit


def test_forbidden_upstream_fields_are_refused(v1, remote_model, upstream):
    for field in ("api_base", "base_url", "api_key"):
        response = v1(dict(BASE, **{field: "http://evil.example/v1"}))
        assert response.status_code == 400
        assert response.json()["error"]["param"] == field
    assert upstream.calls == 0


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "remote"}, "messages"),
        ({"model": "remote", "messages": []}, "messages"),
        ({"model": "remote", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (dict(BASE, temperature=3), "temperature"),
        (dict(BASE, temperature="hot"), "temperature"),
        (dict(BASE, max_tokens=0), "max_tokens"),
        (dict(BASE, stop=[1, 2]), "stop"),
        (dict(BASE, frobnicate=True), "frobnicate"),
    ],
)
def test_invalid_requests_are_a_400_naming_the_field(v1, remote_model, body, param):
    response = v1(body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_unknown_model_is_a_404(v1, workspace):
    response = v1(dict(BASE, model="no-such-model"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_body_that_is_not_json_is_a_400(client, api_key):
    response = client.post(
        "/v1/chat/completions", data="{nope", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}"
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_python_api_errors_are_gateway_errors(workspace, remote_model):
    with pytest.raises(GatewayError) as caught:
        gateway.complete(workspace, {"messages": "hello"})
    assert caught.value.status == 400


def test_changing_the_models_upstream_changes_the_key(v1, remote_model, upstream):
    assert v1(BASE)["X-Cache"] == "MISS"
    assert v1(BASE)["X-Cache"] == "HIT"
    remote_model.upstream_model = "fake-model-2"
    remote_model.save()
    # This process remembered the old spec; the request must still not reuse the old answer.
    response = v1(BASE)
    assert response["X-Cache"] == "MISS"
    assert upstream.requests[-1]["model"] == "fake-model-2"
    assert v1(BASE)["X-Cache"] == "HIT"


def test_cache_extra_changes_the_key(workspace, remote_model, upstream):
    gateway.complete(workspace, BASE, cache_extra={"assistant": 1, "version": 1})
    assert gateway.complete(workspace, BASE, cache_extra={"assistant": 1, "version": 1}).cache_hit
    assert not gateway.complete(workspace, BASE, cache_extra={"assistant": 1, "version": 2}).cache_hit


class RefuseEverything:
    seen = []

    def admit(self, call, hit=False, workspace=None):
        if call.workspace_id == -1:
            return
        raise GatewayError(429, "Monthly budget spent.", code="budget_exceeded")

    def record(self, call, result, error=None):
        self.seen.append(result)


class CountingHook:
    seen = []

    def admit(self, call, hit=False, workspace=None):
        return None

    def record(self, call, result, error=None):
        CountingHook.seen.append((call.workspace_id, call.api_key_id, result.cache_hit))


def test_the_usage_hook_sees_every_completion_and_can_refuse(v1, workspace, api_key, monkeypatch):
    from llmgateway import usage

    monkeypatch.setattr(usage.hook, "_hook", CountingHook())
    CountingHook.seen.clear()
    body = {"model": "offline", "messages": [{"role": "user", "content": "hello"}]}
    v1(body)
    v1(body)
    assert CountingHook.seen == [(workspace.pk, api_key[0].pk, False), (workspace.pk, api_key[0].pk, True)]
    monkeypatch.setattr(usage.hook, "_hook", RefuseEverything())
    response = v1(body)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "budget_exceeded"


RESPONSES = [
    {"id": "x", "choices": [{"message": {"role": "assistant", "content": 'café ✓ \u2028 "q"'}}], "usage": None},
    {"choices": [], "n": 1.5, "big": 10**30, "nan": float("nan"), "nested": {"a": [1, {"b": None}]}},
]


@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize("chunks", [None, ({"choices": [{"delta": {"content": "é"}}]},)])
def test_an_entry_made_with_its_responses_json_is_the_same_bytes(response, chunks):
    from llmgateway.cache.entries import CachedCompletion, response_json

    fields = {"response": response, "generation": 3, "model": "m", "cost": 0.25, "upstream_ms": 12.5}
    fields["chunks"] = chunks
    plain = CachedCompletion(**fields)
    given = CachedCompletion(**fields, stored_at=plain.stored_at).with_response_json(response_json(response))
    expected = json.dumps(
        {
            "response": response,
            "generation": 3,
            "model": "m",
            "cost": 0.25,
            "upstream_ms": 12.5,
            "stored_at": plain.stored_at,
            "chunks": list(chunks) if chunks else None,
        },
        separators=(",", ":"),
    ).encode()
    assert plain.dumps() == given.dumps() == expected
    assert CachedCompletion.loads(given.dumps()).model == "m"
