"""Malformed request bodies get a 400 in OpenAI's error shape, never a 500."""

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
