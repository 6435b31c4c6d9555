"""Malformed request bodies get a 400 in OpenAI's error shape, never a 500."""

import json

import pytest


def post_raw(client, api_key, raw):
    return client.post(
        "/v1/chat/completions", data=raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}"
    )


@pytest.mark.parametrize(
    "raw, param",
    [
        ('{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}', "messages[0].content"),
        ('{"messages": [{"role": "user", "content": "hi"}], "metadata": ' + "[" * 100000 + "]" * 100000 + "}", None),
        # Deep enough to parse, too deep for what walks the body afterwards (the cache key, the encoder).
        ('{"messages": [{"role": "user", "content": "hi"}], "tools": [' + "[" * 900 + "]" * 900 + "]}", None),
        (
            '{"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "s": '
            + "[" * 500
            + "]" * 500
            + "}}",
            None,
        ),
        ('{"messages": [{"role": ["user"], "content": "hi"}]}', "messages[0].role"),
        ('{"messages": [{"role": {"a": 1}, "content": "hi"}]}', "messages[0].role"),
        ('{"model": "off\\u0000line", "messages": [{"role": "user", "content": "hi"}]}', "model"),
        ('{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}', "model"),
    ],
)
def test_bad_bodies_are_400(client, api_key, raw, param):
    response = post_raw(client, api_key, raw)
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param:
        assert error["param"] == param


def test_lone_surrogate_is_answered(client, api_key):
    response = post_raw(client, api_key, '{"messages": [{"role": "user", "content": "hello \\ud800 there"}]}')
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 200:
        assert response.json()["object"] == "chat.completion"


def test_a_tool_schema_nested_within_the_limit_is_answered(client, api_key):
    schema = {"type": "string"}
    for _ in range(20):  # 20 levels of objects: 60 levels of JSON with the tool around them
        schema = {"type": "object", "properties": {"inner": schema}}
    tool = {"type": "function", "function": {"name": "lookup", "parameters": schema}}
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": [tool]}
    response = post_raw(client, api_key, json.dumps(body))
    assert response.status_code == 200, response.content[:300]


def test_a_body_past_the_depth_limit_says_so(client, api_key):
    body = '{"messages": [{"role": "user", "content": "hi"}], "metadata": {"a": ' + "[" * 70 + "]" * 70 + "}}"
    response = post_raw(client, api_key, body)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "raw, param",
    [
        ('{"model": "a\\u0000b", "input": "hi"}', "model"),
        ('{"model": "\\ud800", "input": "hi"}', "model"),
        ('{"input": ["fine", "lone \\udc00 surrogate"]}', "input"),
        ('{"input": ""}', "input"),
        ('{"input": ["fine", ""]}', "input"),
        ('{"input": "hi", "extra": ' + "[" * 900 + "]" * 900 + "}", None),
    ],
)
def test_bad_embedding_bodies_are_400(client, api_key, raw, param):
    response = client.post(
        "/v1/embeddings", data=raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}"
    )
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_a_bad_model_name_without_a_key_is_401(client, db):
    raw = '{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}'
    response = client.post("/v1/chat/completions", data=raw, content_type="application/json")
    assert response.status_code == 401
