"""POST /v1/responses (OpenAI's Responses API) with the official `openai` client, through the same gateway."""

import json

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    }
]


def test_a_response_and_its_cached_replay_streamed(openai_client, remote_model, upstream):
    first = openai_client.responses.with_raw_response.create(
        model="remote", input="What does the gateway do?", instructions="Answer briefly.", max_output_tokens=200
    )
    answer = first.parse()
    assert first.headers["x-cache"] == "MISS"
    assert answer.status == "completed" and answer.object == "response"
    assert answer.output_text.startswith("Echo: What does the gateway do?")
    assert answer.id == "resp_" + first.headers["x-request-id"]
    assert answer.instructions == "Answer briefly." and answer.max_output_tokens == 200
    assert answer.usage.input_tokens > 0 and answer.usage.total_tokens == 11 + answer.usage.output_tokens
    # What the upstream was asked: a chat completion with the instructions first.
    asked = upstream.requests[-1]
    assert [m["role"] for m in asked["messages"]] == ["system", "user"]
    assert asked["max_completion_tokens"] == 200

    # The same question streamed: served from the cache, as Responses events the client's helper accumulates.
    with openai_client.responses.stream(
        model="remote", input="What does the gateway do?", instructions="Answer briefly.", max_output_tokens=200
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert upstream.calls == 1
    assert final.output_text == answer.output_text
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds and "response.output_item.done" in kinds
    assert final.usage.output_tokens == answer.usage.output_tokens


def test_content_parts_become_the_chat_requests_parts(openai_client, remote_model, upstream):
    image = "data:image/png;base64,iVBORw0KGgo="
    openai_client.responses.create(
        model="remote",
        input=[
            {"role": "developer", "content": [{"type": "input_text", "text": "Be terse."}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                ],
            },
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A logo."}]},
            {"role": "user", "content": "Sure?"},
        ],
    )
    assert upstream.requests[-1]["messages"] == [
        {"role": "developer", "content": "Be terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "A logo."},
        {"role": "user", "content": "Sure?"},
    ]


def test_a_chat_completion_and_a_response_share_the_cache(openai_client, remote_model, upstream):
    chat = openai_client.chat.completions.create(model="remote", messages=[{"role": "user", "content": "hello there"}])
    raw = openai_client.responses.with_raw_response.create(model="remote", input="hello there")
    assert raw.headers["x-cache"] == "HIT"
    assert raw.parse().output_text == chat.choices[0].message.content
    assert upstream.calls == 1


@pytest.mark.parametrize("streamed", [False, True])
def test_function_calls_and_their_outputs_go_round(openai_client, remote_model, upstream, streamed):
    question = [{"role": "user", "content": "Weather in Oslo?"}]
    options = {
        "model": "remote",
        "input": question,
        "tools": WEATHER,
        "tool_choice": {"type": "function", "name": "get_weather"},
    }
    if streamed:
        with openai_client.responses.stream(**options) as stream:
            deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
            answer = stream.get_final_response()
        assert len(deltas) > 1  # the arguments came in pieces
    else:
        answer = openai_client.responses.create(**options)
    (call,) = answer.output
    assert (call.type, call.name, call.call_id) == ("function_call", "get_weather", "call_1_0")
    assert json.loads(call.arguments)["text"].startswith("Echo: Weather in Oslo?")
    asked = upstream.requests[-1]
    assert asked["tools"][0]["function"]["name"] == "get_weather"
    assert asked["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    # The client sends the call and its output back: one assistant message with the call, then the tool's answer.
    follow = openai_client.responses.create(
        model="remote",
        input=question
        + [
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "12 degrees and rain"},
        ],
        tools=WEATHER,
        tool_choice="none",
    )
    assert follow.output_text.startswith("Echo:")
    messages = upstream.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "12 degrees and rain"}


def test_an_answer_cut_at_max_output_tokens_is_incomplete(openai_client):
    answer = openai_client.responses.create(model="offline", input="Tell me about the gateway.", max_output_tokens=3)
    assert answer.status == "incomplete"
    assert answer.incomplete_details.reason == "max_output_tokens"
    with openai_client.responses.stream(
        model="offline", input="Tell me about the gateway.", max_output_tokens=3
    ) as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "response.incomplete"


def test_json_output_through_text_format(openai_client):
    answer = openai_client.responses.create(
        model="offline", input="List three colours.", text={"format": {"type": "json_object"}}
    )
    json.loads(answer.output_text)


@pytest.mark.parametrize(
    "options, param",
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
        ({"input": []}, "input"),
        ({"input": 5}, "input"),
        ({"temperature": 9}, "temperature"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
def test_what_the_gateway_cannot_do_is_a_400_naming_the_field(openai_client, remote_model, options, param):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(model="remote", input="hello", extra_body=options)
    assert caught.value.body["param"] == param, caught.value.body
    assert caught.value.body["type"] == "invalid_request_error"


def test_a_bad_key_is_refused_before_the_body_is_read(live_server):
    import requests

    answer = requests.post(
        live_server.url + "/v1/responses",
        data=b"{not json",
        headers={"Authorization": "Bearer gw_nope", "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"


def test_an_upstream_failure_mid_stream_raises_in_the_client(openai_client, remote_model, upstream):
    import openai

    upstream.script("drop", "drop", "drop")
    with (
        pytest.raises(openai.APIError) as caught,
        openai_client.responses.stream(model="remote", input="a question that fails") as stream,
    ):
        for _ in stream:
            pass
    assert caught.value.body["code"] == "upstream_error"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        "null",
        '"hello"',
        '{"input": [5]}',
        '{"input": [{"type": "message"}]}',
        '{"input": [{"role": "user", "content": [5]}]}',
        '{"input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]}',
        '{"input": [{"role": "user", "content": [{"type": "input_image", "image_url": 5}]}]}',
        '{"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x", "detail": "huge"}]}]}',
        '{"input": [{"role": "assistant", "content": [{"type": "input_image"}]}]}',
        '{"input": [{"role": "system", "content": {"a": 1}}]}',
        '{"input": [{"type": "function_call", "call_id": 1, "name": "f", "arguments": "{}"}]}',
        '{"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]}',
        '{"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text"}]}]}',
        '{"input": [{"type": "computer_call"}]}',
        '{"input": "hi", "instructions": 5}',
        '{"input": "hi", "tools": {"a": 1}}',
        '{"input": "hi", "tools": [5]}',
        '{"input": "hi", "tools": [{"type": "function"}]}',
        '{"input": "hi", "tools": [{"type": "function", "name": "bad name!"}]}',
        '{"input": "hi", "tool_choice": 5}',
        '{"input": "hi", "tool_choice": {"type": "allowed_tools"}}',
        '{"input": "hi", "tool_choice": {"type": "function", "name": "nope"}}',
        '{"input": "hi", "tool_choice": "sometimes"}',
        '{"input": "hi", "text": 5}',
        '{"input": "hi", "text": {"format": 5}}',
        '{"input": "hi", "text": {"format": {"type": "json_schema"}}}',
        '{"input": "hi", "text": {"verbosity": "very verbose indeed"}}',
        '{"input": "hi", "reasoning": 5}',
        '{"input": "hi", "reasoning": {"effort": ["high"]}}',
        '{"input": "hi", "stream": "yes"}',
        '{"input": "hi", "metadata": [1]}',
        '{"input": "hi", "temperature": "hot"}',
        '{"input": "hi", "max_output_tokens": 1.5}',
        '{"input": "hi", "user": 5}',
        '{"input": "hi", "model": 5}',
        '{"input": "\\ud800"}',
        '{"input": [{"role": "user", "content": "' + "[" * 10 + '"}], "metadata": ' + "[" * 100000 + "]" * 100000 + "}",
        '{"input": "hi", "tools": [' + "[" * 900 + "]" * 900 + "]}",
    ],
)
def test_bad_bodies_are_a_400_in_openais_shape(client, api_key, raw):
    response = client.post(
        "/v1/responses", data=raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}"
    )
    assert response.status_code == 400, (raw[:100], response.content[:300])
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"], error
