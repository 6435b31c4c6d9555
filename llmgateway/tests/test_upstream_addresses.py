"""Where the gateway may send requests, and what it tells clients when an upstream fails.

Link-local and cloud metadata addresses are refused when a model is saved
(by literal address and by a host name that resolves to one) and again when
a connection is opened, so a name that later resolves elsewhere is caught.
Upstream error text is summarised for the client and logged, never echoed.
"""

import logging
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from llmgateway import registry
from llmgateway.models import ModelConfig
from llmgateway.providers import http

REQUEST = {"model": "remote", "messages": [{"role": "user", "content": "Status?"}]}
SECRET = "sk-upstream-secret-123"

METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.10.1/v1",
    "http://[fe80::1]/v1",
    "http://[fd00:ec2::254]/latest",
    "http://[::ffff:169.254.169.254]/v1",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://100.100.100.200/latest/meta-data",
    # 169.254.169.254 written as one number: a host name that resolves to it.
    "http://2852039166/v1",
]
PRIVATE_URLS = ["http://127.0.0.1:8000/v1", "http://localhost:11434/v1", "http://10.0.0.5/v1", "http://[::1]:8000/v1"]


def _add(base_url, name="m1"):
    call_command("add_model", name, "--base-url", base_url, "--upstream-model", "m")


@pytest.mark.parametrize("url", METADATA_URLS)
def test_add_model_refuses_link_local_and_metadata_addresses(db, url):
    with pytest.raises(CommandError, match=r"base_url: .*(link-local|metadata)"):
        _add(url)
    assert not ModelConfig.objects.exists()


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_loopback_and_private_upstreams_are_allowed_by_default(db, url):
    _add(url)
    assert ModelConfig.objects.get().base_url == url


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_loopback_and_private_upstreams_can_be_forbidden(db, settings, url):
    settings.LLM_ALLOW_PRIVATE_UPSTREAMS = False
    with pytest.raises(CommandError, match=r"base_url: .*(private|loopback).*LLM_ALLOW_PRIVATE_UPSTREAMS"):
        _add(url)


def _admin_form(**changes):
    data = {
        "name": "metadata",
        "kind": "chat",
        "provider": "openai-compatible",
        "upstream_model": "m",
        "base_url": "http://169.254.169.254/latest",
        "price_input_per_1k": "0",
        "price_output_per_1k": "0",
        "timeout_seconds": "30",
        "max_retries": "1",
        "cache_ttl_seconds": "3600",
        "deadline_seconds": "",
        "enabled": "on",
    }
    data.update(changes)
    return data


def test_the_admin_model_form_refuses_a_metadata_address(client_for, make_user):
    staff = make_user("root@example.com", is_staff=True, is_superuser=True)
    response = client_for(staff).post("/admin/llmgateway/modelconfig/add/", _admin_form())
    assert response.status_code == 200
    assert "169.254.169.254 is a cloud metadata address" in response.content.decode()
    assert not ModelConfig.objects.exists()


def test_the_admin_model_form_saves_a_deadline(client_for, make_user):
    staff = make_user("root@example.com", is_staff=True, is_superuser=True)
    data = _admin_form(base_url="http://127.0.0.1:8000/v1", deadline_seconds="45")
    response = client_for(staff).post("/admin/llmgateway/modelconfig/add/", data)
    assert response.status_code == 302
    assert ModelConfig.objects.get().deadline_seconds == 45
    assert registry.get_spec("metadata").deadline_seconds == 45


def test_a_stored_link_local_address_is_refused_when_called(v1, remote_model, upstream):
    # Saved before the rule existed, or written around the form: the call itself refuses it.
    # 2851995657 is 169.254.0.9 written as one number (a name the resolver turns into it).
    ModelConfig.objects.filter(pk=remote_model.pk).update(base_url=f"http://2851995657:{upstream.port}/v1")
    registry.forget_all()
    response = v1(REQUEST)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_address_refused"
    assert "169.254" not in response.content.decode()


def test_a_name_that_comes_to_resolve_to_a_link_local_address_is_refused(v1, db, upstream, monkeypatch):
    # DNS rebinding. The machine's resolver cannot be pointed at a test server here, so
    # one made-up name gets its answers from this table; every other name resolves as usual.
    answers = {"models.rebind.test": "127.0.0.1"}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    call_command(
        "add_model", "remote", "--base-url", f"http://models.rebind.test:{upstream.port}/v1", "--upstream-model", "m"
    )
    assert v1(REQUEST).status_code == 200 and upstream.calls == 1
    answers["models.rebind.test"] = "169.254.0.9"
    http.reset()  # the kept-alive connection has expired: the next call connects again
    response = v1(REQUEST, HTTP_CACHE_CONTROL="no-cache")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_address_refused"
    assert upstream.calls == 1


def test_forbidden_private_upstreams_are_refused_when_called(v1, remote_model, upstream, settings):
    settings.LLM_ALLOW_PRIVATE_UPSTREAMS = False
    response = v1(REQUEST)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_address_refused"
    assert upstream.calls == 0


# Upstream errors: summarised, never echoed -------------------------------------


def _upstream_error(status, **error):
    return {"status": status, "error": error}


def test_an_upstream_refusal_is_summarised_from_its_status_type_and_code(v1, remote_model, upstream, caplog):
    upstream.script(
        _upstream_error(
            400,
            message="This model's maximum context length is 8192 tokens; your messages have 9000.",
            type="invalid_request_error",
            code="context_length_exceeded",
            param="messages",
        )
    )
    with caplog.at_level(logging.WARNING, logger="llmgateway.providers"):
        response = v1(REQUEST)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == (
        "The upstream model returned HTTP 400 (invalid_request_error: context_length_exceeded)."
    )
    assert "maximum context length" not in response.content.decode()
    # Its code and param, as OpenAI's clients read them.
    assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
    # The operator still sees what the upstream said.
    assert "maximum context length is 8192" in caplog.text


def test_upstream_type_and_code_are_left_out_unless_they_are_identifiers(v1, remote_model, upstream):
    upstream.script(
        _upstream_error(
            400, message="no", type="<b>Your prompt was flagged</b>", code="bad input here", param="<i>x</i>"
        )
    )
    response = v1(REQUEST)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "The upstream model returned HTTP 400."
    assert (error["code"], error["param"]) == ("invalid_request_error", None)


@pytest.mark.parametrize(
    "code, param",
    [
        ("deadline_exceeded", "messages\n"),  # one of the gateway's own codes: its retries act on them
        ("context_length_exceeded\n", "messages\nx"),
        (400, " messages"),
    ],
)
def test_an_upstream_code_or_param_that_is_not_one_is_not_passed_on(v1, remote_model, upstream, code, param):
    upstream.script(_upstream_error(400, message="no", type="invalid_request_error", code=code, param=param))
    error = v1(REQUEST).json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request_error", None)


@pytest.mark.parametrize("status", [401, 500, 503])
def test_upstream_error_text_and_the_key_never_reach_the_client_or_the_log(v1, remote_model, upstream, caplog, status):
    remote_model.max_retries = 0
    remote_model.save()
    text = f"Incorrect API key provided: {SECRET}. Internal trace at /srv/model/server.py line 12"
    upstream.script(_upstream_error(status, message=text, type="server_error"))
    with caplog.at_level(logging.DEBUG):
        response = v1(REQUEST)
    body = response.content.decode()
    assert response.status_code in (502, 503)
    assert f"HTTP {status}" in response.json()["error"]["message"]
    assert "Incorrect API key" not in body and "server.py" not in body and SECRET not in body
    assert SECRET not in caplog.text
    assert "Incorrect API key provided: ***" in caplog.text


def test_a_long_upstream_error_is_logged_truncated(v1, remote_model, upstream, caplog):
    upstream.script(_upstream_error(400, message="x" * 5000 + "TAIL"))
    with caplog.at_level(logging.WARNING, logger="llmgateway.providers"):
        assert v1(REQUEST).status_code == 400
    assert "xxxx" in caplog.text and "TAIL" not in caplog.text
