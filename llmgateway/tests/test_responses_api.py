"""POST /v1/responses (OpenAI's Responses API) with the official `openai` client, through the same gateway."""

import json

import pytest

from llmgateway.tests.scripted_upstream import ScriptedUpstream

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    }
]


ADD = [
    {
        "type": "function",
        "name": "add",
        "description": "Add.",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]},
    }
]


@pytest.fixture(scope="module")
def _scripted_server():
    server = ScriptedUpstream()
    yield server
    server.stop()


@pytest.fixture
def scripted(db, _scripted_server):
    """A model whose upstream answers what the test scripts (the chunks of a stream, one by one)."""
    from llmgateway.models import ModelConfig

    _scripted_server.reset()
    model = ModelConfig(
        name="scripted",
        provider="openai-compatible",
        base_url=_scripted_server.base_url,
        upstream_model="m",
        timeout_seconds=5,
        max_retries=0,
    )
    model.set_api_key("sk-test")
    model.save()
    return _scripted_server


def _call(n, name, arguments=""):
    return {"index": n, "id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": arguments}}


def _arguments(n, piece):
    return {"index": n, "function": {"arguments": piece}}


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


def test_a_refusal_whole_and_streamed(openai_client, scripted):
    scripted.script(
        {"message": {"role": "assistant", "content": None, "refusal": "I can't help with that."}},
        {
            "chunks": [
                {"role": "assistant", "content": None, "refusal": ""},
                {"refusal": "I can't "},
                {"refusal": "help."},
                None,
            ]
        },
    )
    (item,) = openai_client.responses.create(model="scripted", input="refuse once").output
    assert (item.content[0].type, item.content[0].refusal) == ("refusal", "I can't help with that.")
    with openai_client.responses.stream(model="scripted", input="refuse twice") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds.count("response.refusal.delta") == 2 and "response.refusal.done" in kinds
    assert final.output[0].content[0].refusal == "I can't help."


@pytest.mark.parametrize("interleaved", [False, True])
def test_parallel_calls_streamed_keep_their_arguments(openai_client, scripted, interleaved):
    """Calls one after another (as OpenAI streams them), or both heads first, then their arguments."""
    if interleaved:
        chunks = [{"tool_calls": [_call(0, "add"), _call(1, "add")]}]
        chunks += [{"tool_calls": [_arguments(0, '{"a":1}')]}, {"tool_calls": [_arguments(1, '{"a":2}')]}]
    else:
        chunks = [{"tool_calls": [_call(0, "add")]}, {"tool_calls": [_arguments(0, '{"a":1}')]}]
        chunks += [{"tool_calls": [_call(1, "add")]}, {"tool_calls": [_arguments(1, '{"a":2}')]}]
    scripted.script({"finish": "tool_calls", "chunks": [{"role": "assistant", "content": None}, *chunks, None]})
    with openai_client.responses.stream(model="scripted", input="two calls", tools=ADD) as stream:
        final = stream.get_final_response()
    assert [(o.type, o.call_id, o.arguments) for o in final.output] == [
        ("function_call", "call_0", '{"a":1}'),
        ("function_call", "call_1", '{"a":2}'),
    ]
    assert len({o.id for o in final.output}) == 2


def test_text_around_a_call_streamed_is_two_messages(openai_client, scripted):
    scripted.script(
        {
            "finish": "tool_calls",
            "chunks": [
                {"role": "assistant", "content": "Let me add. "},
                {"tool_calls": [_call(0, "add", '{"a":1}')]},
                {"content": "Done."},
                None,
            ],
        }
    )
    with openai_client.responses.stream(model="scripted", input="text, call, text", tools=ADD) as stream:
        final = stream.get_final_response()
    assert [o.type for o in final.output] == ["message", "function_call", "message"]
    assert len({o.id for o in final.output}) == 3
    assert (final.output[0].content[0].text, final.output[2].content[0].text) == ("Let me add. ", "Done.")


def test_custom_tool_calls_and_their_outputs_go_round(openai_client, scripted):
    sql = [{"type": "custom", "name": "sql", "description": "Run SQL."}]
    call = {"id": "call_c", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}
    scripted.script({"finish": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [call]}})
    (item,) = openai_client.responses.create(
        model="scripted", input="custom", tools=sql, tool_choice={"type": "custom", "name": "sql"}
    ).output
    assert (item.type, item.name, item.input, item.call_id) == ("custom_tool_call", "sql", "SELECT 1", "call_c")
    assert scripted.requests[-1]["tool_choice"] == {"type": "custom", "custom": {"name": "sql"}}
    follow = openai_client.responses.create(
        model="scripted",
        tools=sql,
        input=[
            {"role": "user", "content": "custom"},
            {"type": "custom_tool_call", "call_id": "call_c", "name": "sql", "input": "SELECT 1"},
            {"type": "custom_tool_call_output", "call_id": "call_c", "output": "1"},
        ],
    )
    assert follow.status == "completed"
    assert scripted.requests[-1]["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_c", "content": "1"},
    ]


def test_an_answer_and_its_calls_go_back_as_one_assistant_turn(openai_client, scripted):
    call = {"id": "call_a", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    answer = {"role": "assistant", "content": "Adding.", "tool_calls": [call]}
    scripted.script({"finish": "tool_calls", "message": answer})
    first = openai_client.responses.create(model="scripted", input="turn 1", tools=ADD)
    assert [o.type for o in first.output] == ["message", "function_call"]
    openai_client.responses.create(
        model="scripted",
        tools=ADD,
        input=[
            {"role": "user", "content": "turn 1"},
            *[o.model_dump(exclude_none=True) for o in first.output],
            {"type": "function_call_output", "call_id": "call_a", "output": "3"},
        ],
    )
    messages = scripted.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1] == answer


@pytest.mark.parametrize("extra", [{"tools": []}, {"tool_choice": "auto"}, {"parallel_tool_calls": False}])
def test_tool_settings_without_tools_are_taken(openai_client, scripted, extra):
    """An agent without tools still sends its tool settings (the OpenAI Agents SDK sends `tools: []`)."""
    answer = openai_client.responses.create(model="scripted", input="no tools", extra_body=extra)
    assert answer.status == "completed"
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(scripted.requests[-1])


def test_a_cut_answers_message_is_incomplete_whole_and_streamed(openai_client, scripted):
    scripted.script(
        {"finish": "length", "text": "A long"},
        {"finish": "length", "chunks": [{"role": "assistant", "content": ""}, {"content": "A long"}, None]},
    )
    answer = openai_client.responses.create(model="scripted", input="cut", max_output_tokens=2)
    assert (answer.status, answer.output[0].status) == ("incomplete", "incomplete")
    with openai_client.responses.stream(model="scripted", input="cut again", max_output_tokens=2) as stream:
        last = list(stream)[-1]
    assert last.type == "response.incomplete" and last.response.output[0].status == "incomplete"


def test_logprobs_asked_through_include(openai_client, remote_model, upstream):
    answer = openai_client.responses.create(
        model="remote", input="with log probabilities", include=["message.output_text.logprobs"], top_logprobs=1
    )
    assert upstream.requests[-1]["logprobs"] is True and upstream.requests[-1]["top_logprobs"] == 1
    logprobs = answer.output[0].content[0].logprobs
    assert "".join(p.token for p in logprobs).strip() == answer.output_text.strip()


def test_a_failure_mid_stream_fails_the_response_then_says_why(live_server, api_key, scripted):
    import requests

    scripted.script({"chunks": [{"role": "assistant", "content": "Half an "}, "DROP"]})
    answer = requests.post(
        live_server.url + "/v1/responses",
        json={"model": "scripted", "input": "fails", "stream": True},
        headers={"Authorization": f"Bearer {api_key[1]}"},
        timeout=20,
    )
    events = [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]
    failed, error = events[-2:]
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == error["code"] == "upstream_error"
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert failed["response"]["output"][0]["content"][0]["text"] == "Half an "
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.parametrize(
    "extra, param, words",
    [
        ({"max_output_tokens": 1.5}, "max_output_tokens", "max_output_tokens"),
        ({"tools": ADD, "tool_choice": {"type": "function", "name": "subtract"}}, "tool_choice", "tool_choice"),
        ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name", "tools[0].name"),
        ({"instructions": "x" * 10, "input": [{"role": "assistant", "content": ""}, {"role": "tool"}]}, None, None),
    ],
)
def test_the_chat_requests_refusals_name_the_responses_fields(openai_client, remote_model, extra, param, words):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.responses.create(model="remote", input="hello", extra_body=extra)
    error = caught.value.body
    if param is not None:
        assert error["param"] == param and words in error["message"], error
    assert "messages" not in error["message"] and "max_completion_tokens" not in error["message"], error
    assert ".function." not in (error["param"] or "") + error["message"], error
