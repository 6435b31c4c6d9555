"""The official `openai` client against a live server, unchanged except for base_url and api_key."""

import json
import uuid

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = [{"role": "user", "content": "What does the gateway do?"}]


def test_completion_then_cached_with_x_cache_hit(openai_client, remote_model, upstream):
    first = openai_client.chat.completions.with_raw_response.create(model="remote", messages=QUESTION)
    second = openai_client.chat.completions.with_raw_response.create(model="remote", messages=QUESTION)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    one, two = first.parse(), second.parse()
    assert one.choices[0].message.content.startswith("Echo: What does the gateway do?")
    assert two.choices[0].message.content == one.choices[0].message.content
    assert one.usage.total_tokens > 0
    assert upstream.calls == 1


def test_streaming_and_its_replay(openai_client, remote_model, upstream):
    stream = openai_client.chat.completions.create(
        model="remote", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Echo: What does the gateway do?")
    assert chunks[-1].usage.total_tokens > 0
    raw = openai_client.chat.completions.with_raw_response.create(model="remote", messages=QUESTION, stream=True)
    assert raw.headers["x-cache"] == "HIT"
    replayed = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert replayed == text
    assert upstream.calls == 1


def test_cache_controls_through_extra_headers_and_body(openai_client, remote_model, upstream):
    openai_client.chat.completions.create(model="remote", messages=QUESTION)
    fresh = openai_client.chat.completions.with_raw_response.create(
        model="remote", messages=QUESTION, extra_headers={"Cache-Control": "no-cache"}
    )
    assert fresh.headers["x-cache"] == "MISS"
    skipped = openai_client.chat.completions.with_raw_response.create(
        model="remote", messages=QUESTION, extra_body={"cache": {"no-cache": True}}
    )
    assert skipped.headers["x-cache"] == "MISS"
    assert upstream.calls == 3


def test_offline_model_and_model_list(openai_client):
    passages = "[1] Expense reports are due on the fifth working day of each month."
    answer = openai_client.chat.completions.create(
        model="offline",
        messages=[
            {"role": "system", "content": passages},
            {"role": "user", "content": "When are expense reports due?"},
        ],
    )
    assert "fifth working day" in answer.choices[0].message.content
    assert "offline" in [m.id for m in openai_client.models.list()]


def test_errors_map_to_the_clients_exceptions(live_server, openai_client, remote_model, upstream):
    import openai

    from llmgateway.metering import records
    from llmgateway.models import UsageRecord

    bad = openai.OpenAI(base_url=live_server.url + "/v1", api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as unauthenticated:
        bad.chat.completions.create(model="remote", messages=QUESTION)
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.chat.completions.create(model="missing", messages=QUESTION)
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="remote", messages=QUESTION, extra_body={"api_base": "http://x"})
    assert caught.value.body["param"] == "api_base"
    upstream.script((429, {"Retry-After": "300"}))
    with pytest.raises(openai.RateLimitError) as limited:
        openai_client.chat.completions.create(model="remote", messages=[{"role": "user", "content": "limited"}])
    # Every answer names a request, as OpenAI's do; the upstream's refusal names its usage record.
    errors = [unauthenticated, missing, caught, limited]
    ids = [error.value.request_id for error in errors]
    ids.append(openai_client.models.with_raw_response.list().headers.get("x-request-id"))
    assert None not in ids and len(set(ids)) == len(ids)
    records.drain()
    assert UsageRecord.objects.get(request_id=uuid.UUID(limited.value.request_id)).status == 429


WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
ANSWER_SHAPES = {
    "tool_calls": {"tools": WEATHER, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    "n": {"n": 2},
    "logprobs": {"logprobs": True, "top_logprobs": 1},
}


def _essentials(completion):
    """What a client reads of a chat.completion, in plain data."""
    return {
        "fingerprint": completion.system_fingerprint,
        "usage": completion.usage.total_tokens,
        "choices": [
            {
                "index": choice.index,
                "finish": choice.finish_reason,
                "content": choice.message.content,
                "tool_calls": [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []],
                "logprobs": [t.token for t in choice.logprobs.content] if choice.logprobs else None,
            }
            for choice in completion.choices
        ],
    }


@pytest.mark.parametrize("shape", ANSWER_SHAPES)
@pytest.mark.parametrize("first", ["stream", "whole"])
def test_tool_calls_choices_and_logprobs_survive_the_cache_between_stream_and_whole(
    openai_client, remote_model, upstream, shape, first
):
    """A streamed answer served again whole (and the other way round) tells the client the same things."""
    options = dict(ANSWER_SHAPES[shape], model="remote", messages=[{"role": "user", "content": f"{shape} {first}"}])

    def streamed():
        with openai_client.chat.completions.stream(**options, stream_options={"include_usage": True}) as stream:
            return _essentials(stream.get_final_completion())

    def whole():
        return _essentials(openai_client.chat.completions.create(**options))

    one, two = (streamed, whole) if first == "stream" else (whole, streamed)
    answer, replayed = one(), two()
    assert upstream.calls == 1
    assert replayed == answer
    assert answer["fingerprint"] == "fp_fake"
    choices = answer["choices"]
    if shape == "tool_calls":
        assert choices[0]["finish"] == "tool_calls" and choices[0]["content"] is None
        (call_id, name, arguments) = choices[0]["tool_calls"][0]
        assert (call_id, name) == ("call_1_0", "get_weather")
        assert json.loads(arguments)["text"].startswith("Echo: tool_calls")
    if shape == "n":
        assert [c["index"] for c in choices] == [0, 1]
    if shape == "logprobs":
        assert "".join(choices[0]["logprobs"]).strip() == choices[0]["content"].strip()


def test_every_answer_names_its_usage_record_in_x_request_id(openai_client, remote_model, upstream):
    from llmgateway.metering import records
    from llmgateway.models import UsageRecord

    miss = openai_client.chat.completions.with_raw_response.create(model="remote", messages=QUESTION)
    hit = openai_client.chat.completions.with_raw_response.create(model="remote", messages=QUESTION)
    stream = openai_client.chat.completions.with_raw_response.create(model="remote", messages=QUESTION, stream=True)
    list(stream.parse())
    ids = [response.headers.get("x-request-id") for response in (miss, hit, stream)]
    assert miss.parse()._request_id == ids[0]
    assert None not in ids and len(set(ids)) == 3
    records.drain()
    stored = {record.request_id.hex: record.cache for record in UsageRecord.objects.all()}
    assert [stored.get(request_id) for request_id in ids] == ["miss", "hit", "hit"]


def test_model_retrieval_and_endpoints_the_gateway_does_not_serve(openai_client, remote_model):
    import openai

    model = openai_client.models.retrieve("remote")
    assert (model.id, model.object, model.owned_by) == ("remote", "model", "gateway")
    assert openai_client.models.retrieve("offline").id == "offline"
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.models.retrieve("org/missing")
    assert (caught.value.code, caught.value.body["param"]) == ("model_not_found", "model")
    # Endpoints the gateway does not serve: OpenAI's 404, naming the call and what is served.
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.images.generate(model="remote", prompt="hello")
    assert caught.value.body["message"].startswith("Invalid URL (POST /v1/images/generations)")
    assert "/v1/chat/completions" in caught.value.body["message"] and "/v1/responses" in caught.value.body["message"]
    assert caught.value.body["type"] == "invalid_request_error"


def test_the_clients_own_retry_waits_for_the_retry_after_it_is_given(live_server, api_key, remote_model, upstream):
    import openai

    remote_model.max_retries = 0  # the gateway passes the upstream's 503 on, with its Retry-After
    remote_model.save()
    upstream.script((503, {"Retry-After": "1"}))
    client = openai.OpenAI(base_url=live_server.url + "/v1", api_key=api_key[1], max_retries=1, timeout=20)
    raw = client.chat.completions.with_raw_response.create(model="remote", messages=QUESTION)
    assert raw.retries_taken == 1 and upstream.calls == 2
    assert raw.parse().choices[0].message.content.startswith("Echo:")
