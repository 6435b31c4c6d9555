"""Limits on what one request may send upstream: characters of message content and number of messages."""

import pytest

from llmgateway import gateway


def _message(text):
    return {"role": "user", "content": text}


def _refused(v1, upstream, body):
    response = v1(body)
    assert response.status_code == 400
    assert upstream.calls == 0
    return response.json()["error"]


def test_a_huge_message_is_refused_before_any_upstream_call(v1, remote_model, upstream):
    error = _refused(v1, upstream, {"model": "remote", "messages": [_message("a" * 1_900_000)]})
    assert (error["param"], error["code"], error["type"]) == ("messages", "input_too_long", "invalid_request_error")
    assert "200,000" in error["message"]


def test_the_limit_counts_all_messages_and_text_parts(v1, remote_model, upstream, settings):
    settings.LLM_MAX_INPUT_CHARS = 1000
    parts = [{"type": "text", "text": "b" * 300}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    messages = [_message("a" * 300), {"role": "user", "content": parts}, {"role": "assistant", "content": "c" * 401}]
    error = _refused(v1, upstream, {"model": "remote", "messages": messages})
    assert error["code"] == "input_too_long" and "1,000" in error["message"]


def test_input_up_to_the_limit_goes_through(v1, remote_model, upstream, settings):
    settings.LLM_MAX_INPUT_CHARS = 100_000
    response = v1({"model": "remote", "messages": [_message("a" * 99_990), _message("0123456789")]})
    assert response.status_code == 200 and upstream.calls == 1


def test_too_many_messages_are_refused(v1, remote_model, upstream):
    error = _refused(v1, upstream, {"model": "remote", "messages": [_message("hi")] * 501})
    assert (error["param"], error["code"]) == ("messages", "too_many_messages")
    assert "500" in error["message"]


def test_the_python_api_applies_the_same_limits(workspace, settings):
    settings.LLM_MAX_INPUT_CHARS = 50_000
    with pytest.raises(gateway.GatewayError) as caught:
        gateway.complete(workspace, {"messages": [_message("a" * 100_000)]})
    assert (caught.value.status, caught.value.code) == (400, "input_too_long")
    settings.LLM_MAX_MESSAGES = 3
    with pytest.raises(gateway.GatewayError) as caught:
        gateway.complete(workspace, {"messages": [_message("hi")] * 4})
    assert (caught.value.status, caught.value.code) == (400, "too_many_messages")
