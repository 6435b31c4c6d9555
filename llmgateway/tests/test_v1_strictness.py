"""/v1 refuses what OpenAI's API refuses, with a 400 naming the parameter, and answers HEAD like GET."""

import json

import pytest

from llmgateway.tests.test_v1_handler import call

HI = [{"role": "user", "content": "hi"}]


def tool(name="lookup", **extra):
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}, **extra}}


def refused(response, param):
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    return error


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": ["text"]}}, "response_format.type"),
        ({"response_format": {}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format.json_schema"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format.json_schema.name"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "has space"}}},
            "response_format.json_schema.name",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": []}}},
            "response_format.json_schema.schema",
        ),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": False, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        ({"tools": []}, "tools"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": ["lookup"]}, "tools[0]"),
        ({"tools": [tool(), {"type": "retrieval"}]}, "tools[1].type"),
        ({"tools": [{"type": "function"}]}, "tools[0].function"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"tools": [tool("has space")]}, "tools[0].function.name"),
        ({"tools": [tool("x" * 65)]}, "tools[0].function.name"),
        ({"tools": [tool(parameters="object")]}, "tools[0].function.parameters"),
        ({"tools": [tool(description=5)]}, "tools[0].function.description"),
        ({"tools": [tool()] * 129}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tools": [tool()], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [tool()], "tool_choice": 1}, "tool_choice"),
        ({"tools": [tool()], "tool_choice": {"type": "function"}}, "tool_choice.function"),
        ({"tools": [tool()], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
        ({"tools": [tool()], "tool_choice": {"type": "mystery"}}, "tool_choice.type"),
        ({"parallel_tool_calls": True}, "parallel_tool_calls"),
        ({"tools": [tool()], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"functions": [{"name": "bad name"}]}, "functions[0].name"),
        ({"function_call": "auto"}, "function_call"),
        ({"user": 5}, "user"),
        ({"logit_bias": "x"}, "logit_bias"),
        ({"logit_bias": {"1": "x"}}, "logit_bias"),
        ({"logit_bias": {"1": 101}}, "logit_bias"),
        ({"logit_bias": {"token": 1}}, "logit_bias"),
        ({"logit_bias": [1]}, "logit_bias"),
        ({"logprobs": "x"}, "logprobs"),
        ({"logprobs": True, "top_logprobs": -1e40}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"store": "x"}, "store"),
        ({"modalities": 1}, "modalities"),
        ({"modalities": ["text", "smell"]}, "modalities[1]"),
        ({"metadata": {"a": {"b": 1}}}, "metadata.a"),
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
        ({"service_tier": 1}, "service_tier"),
        ({"reasoning_effort": ["high"]}, "reasoning_effort"),
        ({"audio": "x"}, "audio"),
        ({"prediction": 1}, "prediction"),
        ({"web_search_options": []}, "web_search_options"),
        ({"service_tier": "x" * 5000}, "service_tier"),
        ({"reasoning_effort": "very high"}, "reasoning_effort"),
        ({"reasoning_effort": "high\n"}, "reasoning_effort"),
        ({"verbosity": "\ud800"}, "verbosity"),
        ({"stop": "\ud800"}, "stop"),
        ({"stop": ["ok", "\udfff"]}, "stop"),
        ({"user": "\ud800"}, "user"),
        ({"user": "u" * 513}, "user"),
        ({"safety_identifier": "\ud800"}, "safety_identifier"),
    ],
)
def test_what_openai_refuses_is_a_400_naming_the_parameter(v1, fields, param):
    refused(v1(dict(messages=HI, **fields)), param)


@pytest.mark.parametrize(
    "messages, param",
    [
        ([{"role": "tool", "content": "x"}], "messages[0].tool_call_id"),
        ([{"role": "tool", "content": "x", "tool_call_id": 5}], "messages[0].tool_call_id"),
        ([{"role": "user"}], "messages[0].content"),
        ([{"role": "system", "content": None}], "messages[0].content"),
        ([{"role": "assistant"}], "messages[0].content"),
        ([{"role": "assistant", "content": None, "tool_calls": "x"}], "messages[0].tool_calls"),
        ([{"role": "assistant", "tool_calls": [{"type": "function"}]}], "messages[0].tool_calls[0].id"),
        (
            [{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"arguments": "{}"}}]}],
            "messages[0].tool_calls[0].function.name",
        ),
        ([{"role": "user", "content": [{"type": None}]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text"),
        ([{"role": "user", "content": [{"type": "video", "video": {}}]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}], "messages[0].content[0].image_url"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            "messages[0].content[0].image_url.url",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}],
            "messages[0].content[0].image_url.url",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "ultra"}}],
                }
            ],
            "messages[0].content[0].image_url.detail",
        ),
        ([{"role": "user", "content": "lone \udfff\ud800 surrogates"}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "text", "text": "\ud800"}]}], "messages[0].content[0].text"),
        ([{"role": "user", "content": "hi", "name": 5}], "messages[0].name"),
        ([{"role": "function", "content": "x"}], "messages[0].name"),
    ],
)
def test_messages_openai_refuses_are_a_400_naming_the_part(v1, messages, param):
    refused(v1({"messages": messages}), param)


@pytest.mark.parametrize(
    "messages",
    [
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"x"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "user", "content": "thanks"},
        ],
        [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi", "name": "sam"}],
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                ],
            }
        ],
        [{"role": "assistant", "refusal": "I cannot."}, {"role": "user", "content": "ok"}],
    ],
)
def test_messages_openai_accepts_are_answered(v1, messages):
    response = v1({"messages": messages})
    assert response.status_code == 200, response.content[:300]


def test_an_unknown_response_format_says_which_are_accepted(v1):
    error = refused(v1({"messages": HI, "response_format": {"type": "xml"}}), "response_format.type")
    assert all(kind in error["message"] for kind in ("text", "json_object", "json_schema"))
    assert error["code"] == "invalid_value"


def test_stream_options_without_stream_says_so(v1):
    error = refused(v1({"messages": HI, "stream_options": {"include_usage": True}}), "stream_options")
    assert error["message"] == "The 'stream_options' parameter is only allowed when 'stream' is enabled."


@pytest.mark.parametrize(
    "fields",
    [
        {"response_format": {"type": "text"}},
        {"response_format": {"type": "json_object"}},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "answer-1", "schema": {}, "strict": True}}},
        {"tools": [tool()], "tool_choice": "required", "parallel_tool_calls": False},
        {"tools": [tool(), tool("get_weather")], "tool_choice": {"type": "function", "function": {"name": "lookup"}}},
        {"tools": [tool()], "tool_choice": None},
        {"tools": None, "tool_choice": None, "stream_options": None},
        {"tools": [{"type": "custom", "custom": {"name": "grammar_tool"}}]},
        {"functions": [{"name": "lookup", "parameters": {}}], "function_call": {"name": "lookup"}},
        {"user": "someone"},
        {"logit_bias": {"50256": -100, "1": 2.5}, "logprobs": True, "top_logprobs": 3, "store": False},
        {"metadata": {"trace": "abc"}, "modalities": ["text"], "service_tier": "auto", "reasoning_effort": "low"},
        {"service_tier": "flex", "reasoning_effort": "minimal", "verbosity": "high", "stop": ["\n\n", "END"]},
        {"logprobs": None, "top_logprobs": None, "logit_bias": None, "metadata": None, "modalities": None},
    ],
)
def test_what_openai_accepts_is_answered(v1, fields, remote_model, upstream):
    # An upstream model: the offline one refuses what it cannot do (tool calls, schemas, log probabilities).
    response = v1(dict(model="remote", messages=HI, **fields))
    assert response.status_code == 200, response.content[:300]


def test_stream_options_with_stream_is_answered(v1):
    response = v1({"messages": HI, "stream": True, "stream_options": {"include_usage": True}})
    assert response.status_code == 200
    events = b"".join(response.streaming_content).decode().split("\n\n")
    assert events[-2] == "data: [DONE]"
    assert json.loads(events[-3].removeprefix("data: "))["usage"]["total_tokens"] > 0


def embed(client, api_key, body):
    return client.post(
        "/v1/embeddings",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
    )


@pytest.mark.parametrize(
    "body, param, code",
    [
        ({"input": "hi", "temperature": 0.5}, "temperature", "unknown_parameter"),
        ({"input": "hi", "messages": HI}, "messages", "unknown_parameter"),
        ({"input": "hi", "api_base": "http://elsewhere"}, "api_base", "forbidden_parameter"),
        ({"input": "hi", "user": ["a"]}, "user", "invalid_type"),
    ],
)
def test_embeddings_refuse_unknown_fields_as_chat_completions_do(client, api_key, body, param, code):
    assert refused(embed(client, api_key, body), param)["code"] == code


def test_embeddings_take_openai_s_documented_fields(client, api_key):
    body = {"input": ["hi"], "model": "local", "encoding_format": "float", "dimensions": 8, "user": "someone"}
    response = embed(client, api_key, body)
    assert response.status_code == 200, response.content[:300]
    assert len(response.json()["data"][0]["embedding"]) == 8


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/offline"])
def test_head_answers_like_get_without_a_body(client, api_key, path):
    bearer = f"Bearer {api_key[1]}"
    get = client.get(path, HTTP_AUTHORIZATION=bearer)
    head = client.head(path, HTTP_AUTHORIZATION=bearer)
    assert (get.status_code, head.status_code) == (200, 200)
    assert head["Content-Type"] == get["Content-Type"] == "application/json"
    assert head.content == b""
    assert int(head["Content-Length"]) == len(get.content)
    assert client.head(path).status_code == 401  # the key is checked as for GET


@pytest.mark.django_db(transaction=True)
def test_head_through_the_v1_handler_sends_no_body(api_key):
    from corporate.handlers import get_application

    status, headers, content = call(get_application(), "HEAD", "/v1/models", authorization=f"Bearer {api_key[1]}")
    assert status == 200
    assert content == b""
    assert int(headers["content-length"]) > 0


def test_other_methods_on_a_get_address_name_get_and_head(client, api_key):
    response = client.delete("/v1/models", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
