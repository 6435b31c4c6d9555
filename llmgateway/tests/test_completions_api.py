"""POST /v1/completions (OpenAI's legacy completions API) with the official `openai` client."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_completion_whole_then_streamed_from_the_cache(openai_client, remote_model, upstream):
    raw = openai_client.completions.with_raw_response.create(model="remote", prompt="Say hello", max_tokens=50)
    answer = raw.parse()
    assert raw.headers["x-cache"] == "MISS" and raw.headers["x-request-id"]
    assert answer.object == "text_completion" and answer.id.startswith("cmpl-")
    assert answer.choices[0].text.startswith("Echo: Say hello")
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.total_tokens > 0
    assert upstream.requests[-1]["messages"] == [{"role": "user", "content": "Say hello"}]
    assert upstream.requests[-1]["max_tokens"] == 50

    stream = openai_client.completions.create(
        model="remote", prompt="Say hello", max_tokens=50, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == answer.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens == answer.usage.total_tokens
    assert upstream.calls == 1  # the stream was the cached answer


def test_several_answers_and_log_probabilities(openai_client, remote_model, upstream):
    answer = openai_client.completions.create(model="remote", prompt="Two please", n=2, logprobs=1)
    assert [c.index for c in answer.choices] == [0, 1]
    logprobs = answer.choices[0].logprobs
    assert "".join(logprobs.tokens).strip() == answer.choices[0].text.strip()
    assert len(logprobs.token_logprobs) == len(logprobs.tokens) == len(logprobs.text_offset)
    assert upstream.requests[-1]["top_logprobs"] == 1


def test_the_offline_model_stops_at_max_tokens(openai_client):
    answer = openai_client.completions.create(model="offline", prompt="Tell me about the gateway.", max_tokens=3)
    assert answer.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    "options, param",
    [
        ({"suffix": "}"}, "suffix"),
        ({"echo": True}, "echo"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"logprobs": 9}, "logprobs"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"temperature": 5}, "temperature"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
def test_what_a_chat_model_cannot_do_is_a_400_naming_the_field(openai_client, remote_model, options, param):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.completions.create(model="remote", prompt="hello", extra_body=options)
    assert caught.value.body["param"] == param, caught.value.body


def test_a_bad_key_comes_before_a_bad_body(client):
    answer = client.post(
        "/v1/completions", data=b"{nope", content_type="application/json", HTTP_AUTHORIZATION="Bearer x"
    )
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/v1/completions").status_code == 405
