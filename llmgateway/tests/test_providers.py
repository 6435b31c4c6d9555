"""Providers against a real local OpenAI-compatible server: faults, retries, breaker, fallback, secrets."""

import logging
import time

import pytest

from llmgateway import gateway
from llmgateway.gateway import GatewayError
from llmgateway.models import ModelConfig
from llmgateway.providers import offline
from llmgateway.providers.openai_compat import parse_retry_after

REQUEST = {"model": "remote", "messages": [{"role": "user", "content": "Status?"}]}
SECRET = "sk-upstream-secret-123"


def _fails(workspace, request=REQUEST, **kwargs):
    with pytest.raises(GatewayError) as caught:
        gateway.complete(workspace, request, **kwargs)
    return caught.value


def test_the_upstream_gets_the_decrypted_key_and_its_own_model_id(workspace, remote_model, upstream):
    gateway.complete(workspace, REQUEST)
    assert upstream.headers[0]["Authorization"] == f"Bearer {SECRET}"
    assert upstream.requests[0]["model"] == "fake-model"
    assert "cache" not in upstream.requests[0]


def test_the_key_is_encrypted_at_rest(remote_model):
    stored = ModelConfig.objects.values_list("api_key_encrypted", flat=True).get(pk=remote_model.pk)
    assert stored and SECRET not in stored
    assert SECRET not in str(ModelConfig.objects.filter(pk=remote_model.pk).values().first())


def test_key_from_the_environment(workspace, remote_model, upstream, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_UPSTREAM_KEY", "sk-from-env")
    remote_model.api_key_env = "GATEWAY_TEST_UPSTREAM_KEY"
    remote_model.save()
    gateway.complete(workspace, REQUEST)
    assert upstream.headers[0]["Authorization"] == "Bearer sk-from-env"


def test_5xx_is_retried(workspace, remote_model, upstream):
    upstream.script(500, 502)
    result = gateway.complete(workspace, REQUEST)
    assert upstream.calls == 3
    assert "(call 3)" in result.text


def test_5xx_beyond_the_retries_is_a_502_in_openai_shape(v1, remote_model, upstream):
    upstream.script(500, 500, 500)
    response = v1(REQUEST)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "api_error" and "Traceback" not in response.content.decode()
    assert upstream.calls == 3


def test_429_honours_retry_after(workspace, remote_model, upstream):
    upstream.script((429, {"Retry-After": "1"}))
    started = time.monotonic()
    result = gateway.complete(workspace, REQUEST)
    assert time.monotonic() - started >= 1.0
    assert upstream.calls == 2 and "(call 2)" in result.text


def test_429_with_a_long_retry_after_goes_back_to_the_client(v1, remote_model, upstream):
    upstream.script((429, {"Retry-After": "120"}))
    started = time.monotonic()
    response = v1(REQUEST)
    assert time.monotonic() - started < 5
    assert response.status_code == 429
    assert response["Retry-After"] == "120"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert upstream.calls == 1


def test_timeout_is_a_504(v1, remote_model, upstream):
    remote_model.timeout_seconds = 1
    remote_model.max_retries = 0
    remote_model.save()
    upstream.latency = 1.5
    response = v1(REQUEST)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_unreachable_upstream_is_a_502(v1, remote_model):
    remote_model.base_url = "http://127.0.0.1:9/v1"
    remote_model.max_retries = 1
    remote_model.save()
    response = v1(REQUEST)
    assert response.status_code == 502


def test_a_refused_request_is_not_retried(workspace, remote_model, upstream):
    upstream.script(400)
    error = _fails(workspace)
    assert error.status == 400 and error.message == "The upstream model returned HTTP 400 (server_error)."
    assert upstream.calls == 1


def test_upstream_auth_failure_does_not_leak_the_key(v1, remote_model, upstream, caplog):
    upstream.script(401)
    with caplog.at_level(logging.DEBUG):
        response = v1(REQUEST)
    assert response.status_code == 502
    assert SECRET not in response.content.decode()
    assert SECRET not in caplog.text


def test_fallback_model_answers_when_the_model_fails(v1, workspace, remote_model, upstream):
    remote_model.max_retries = 0
    remote_model.fallback = ModelConfig.objects.create(name="backup", provider="offline")
    remote_model.save()
    upstream.script(503)
    response = v1(REQUEST)
    assert response.status_code == 200
    assert response.json()["model"] == "backup"
    # A fallback answer is not cached under the requested model.
    upstream.reset()
    assert v1(REQUEST)["X-Cache"] == "MISS"
    assert upstream.calls == 1


def test_circuit_breaker_skips_a_failing_model_then_tries_again(workspace, remote_model, upstream, settings):
    settings.LLM_BREAKER_FAILURES = 2
    settings.LLM_BREAKER_COOLDOWN = 3  # the third call comes within it even on a busy host
    remote_model.max_retries = 0
    remote_model.save()
    upstream.script(500, 500)
    assert _fails(workspace, cache_control="no-cache").status == 502
    assert _fails(workspace, cache_control="no-cache").status == 502
    # Open: no upstream call at all, a 503 at once.
    error = _fails(workspace, cache_control="no-cache")
    assert (error.status, error.code) == (503, "model_unavailable")
    assert upstream.calls == 2
    time.sleep(3.1)
    assert gateway.complete(workspace, REQUEST).text.startswith("Echo:")
    assert upstream.calls == 3


def test_open_circuit_goes_to_the_fallback(workspace, remote_model, upstream, settings):
    settings.LLM_BREAKER_FAILURES = 1
    remote_model.max_retries = 0
    remote_model.fallback = ModelConfig.objects.create(name="backup", provider="offline")
    remote_model.save()
    upstream.script(500)
    assert gateway.complete(workspace, REQUEST).model == "backup"
    assert gateway.complete(workspace, REQUEST, cache_control="no-cache").model == "backup"
    assert upstream.calls == 1


def test_stream_errors_before_the_first_chunk_get_their_status(v1, remote_model, upstream):
    remote_model.max_retries = 0
    remote_model.save()
    upstream.script(503)
    response = v1(dict(REQUEST, stream=True))
    assert response.status_code == 503


def test_stream_retries_before_the_first_chunk(workspace, remote_model, upstream):
    upstream.script(500)
    stream = gateway.stream(workspace, REQUEST)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])
    assert "(call 2)" in text and upstream.calls == 2


@pytest.mark.parametrize("value, expected", [("3", 3.0), ("0.5", 0.5), (None, None), ("soon", None), ("-4", 0.0)])
def test_retry_after_parsing(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_as_an_http_date():
    from email.utils import formatdate

    assert 8 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10


class TestOffline:
    PASSAGES = (
        "[handbook p.3] Employees get 25 days of paid holiday per year. Unused days expire in March.\n\n"
        "[handbook p.7] The office opens at 8 am. Parking in the garage is free for staff.\n\n"
        '<passage id="it-1">Laptops are replaced every three years. Report a lost laptop to IT at once.</passage>'
    )

    def _ask(self, question, passages=PASSAGES):
        messages = [{"role": "system", "content": "Answer from the passages.\n\n" + passages}] if passages else []
        return offline.answer([*messages, {"role": "user", "content": question}])

    def test_quotes_the_relevant_sentence_with_its_label(self):
        text = self._ask("How many holiday days do employees get?")
        # The fact in plain words, its passage cited inline, nothing else.
        assert text == "Employees get 25 days of paid holiday per year [handbook p.3]."

    def test_tag_passages_and_question_marker(self):
        text = self._ask("Context below.\nQuestion: What should I do with a lost laptop?")
        assert "Report a lost laptop to IT at once [it-1]." in text

    def test_says_when_no_passage_answers(self):
        assert self._ask("What is the CEO's favourite colour?") == "I couldn't find this in the documents I searched."

    def test_names_what_it_searched(self):
        passages = self.PASSAGES + "\nSearched: the HR helpdesk’s documents"
        assert self._ask("Is there a company gym?", passages) == "I couldn't find this in the HR helpdesk’s documents."

    def test_a_paraphrase_finds_the_sentence_by_meaning(self):
        # "vacation" is nowhere in the passages: the embedding model knows it means holiday.
        text = self._ask("How much vacation time do I get?")
        assert text == "Employees get 25 days of paid holiday per year [handbook p.3]."

    def test_prefers_the_sentence_with_what_is_asked_for(self):
        passages = (
            '<passage id="1">Sabbatical. We offer a sabbatical to everyone who has been here a while. '
            "You can take one every three years, for up to six weeks, fully paid.</passage>"
        )
        text = self._ask("How often can I take a sabbatical?", passages)
        assert "every three years" in text and text.endswith("[1].")

    def test_cites_each_passage_once_and_repeats_no_sentence(self):
        passages = (
            '<passage id="1">Staff get 25 days of paid holiday per year. Holidays are booked in Harbor.</passage>\n'
            '<passage id="2">Staff get 25 days of paid holiday per year. Holidays are booked in Harbor.</passage>'
        )
        text = self._ask("How many paid holiday days do staff get, and where are they booked?", passages)
        assert text.count("25 days") == 1 and text.count("[1]") == 1 and "[2]" not in text

    def test_says_when_there_are_no_passages(self):
        assert self._ask("What is the capital of France?", passages="") == offline.NO_MODEL

    def test_through_the_gateway_with_estimated_usage(self, workspace):
        result = gateway.complete(
            workspace,
            {
                "model": "offline",
                "messages": [
                    {"role": "system", "content": self.PASSAGES},
                    {"role": "user", "content": "When does the office open?"},
                ],
            },
        )
        assert "The office opens at 8 am [handbook p.7]." in result.text
        assert result.usage["prompt_tokens"] > 0 and result.cost == 0
        assert gateway.complete(workspace, {"messages": [{"role": "user", "content": "hi"}]}).model == "offline"


def test_unreadable_stored_key_is_a_clear_500(v1, remote_model, upstream):
    ModelConfig.objects.filter(pk=remote_model.pk).update(api_key_encrypted="gAAAAAnot-a-valid-token")
    from llmgateway import registry

    registry.forget_all()
    response = v1(REQUEST)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "model_misconfigured"
    assert upstream.calls == 0


def test_open_circuit_tells_when_to_retry(v1, remote_model, upstream, settings):
    settings.LLM_BREAKER_FAILURES = 1
    settings.LLM_BREAKER_COOLDOWN = 7
    remote_model.max_retries = 0
    remote_model.save()
    upstream.script(500)
    assert v1(REQUEST).status_code == 502
    response = v1(REQUEST)
    assert response.status_code == 503 and response["Retry-After"] == "7"


def test_offline_prefers_the_passage_about_everything_asked():
    messages = [
        {
            "role": "user",
            "content": (
                '<passage id="1">How do I connect to the office Wi-Fi?\nIt connects automatically.</passage>\n'
                '<passage id="2">How do I set up the VPN?\nBrightwater uses BW-Connect, a WireGuard-based VPN client.'
                "</passage>\n\nQuestion: How do I connect to the VPN?"
            ),
        }
    ]
    text = offline.answer(messages)
    assert text == "Brightwater uses BW-Connect, a WireGuard-based VPN client [2]."


def test_offline_quotes_table_rows_one_at_a_time():
    rows = "\n".join(f"Category: Item {i}; Limit (EUR): {i * 10} per night" for i in range(12))
    rows += "\nCategory: Hotel; Limit (EUR): 180 per night"
    messages = [{"role": "user", "content": f'<passage id="1">{rows}</passage>\n\nQuestion: What is the hotel limit?'}]
    text = offline.answer(messages)
    assert "Category: Hotel; Limit (EUR): 180 per night [1]." in text
    assert "Item 3" not in text


class _CountingStream:
    """A real connection that counts its writes."""

    writes = 0

    def __init__(self, stream):
        self._stream = stream

    def write(self, buffer, timeout=None):
        type(self).writes += 1
        return self._stream.write(buffer, timeout)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def test_a_request_leaves_in_one_write_and_is_answered(workspace, remote_model, upstream, monkeypatch):
    import httpcore

    from llmgateway.providers import http

    real_connect = httpcore.SyncBackend.connect_tcp
    monkeypatch.setattr(
        httpcore.SyncBackend, "connect_tcp", lambda self, *a, **k: _CountingStream(real_connect(self, *a, **k))
    )
    monkeypatch.setattr(_CountingStream, "writes", 0)
    http.reset()
    try:
        messages = [{"role": "user", "content": "x" * 5000}]  # a body larger than the request's head
        result = gateway.complete(workspace, {"model": "remote", "messages": messages})
        streamed = list(gateway.stream(workspace, {"model": "remote", "messages": messages + messages}))
    finally:
        http.reset()
    assert result.text and streamed
    assert _CountingStream.writes == 2  # one write for each request: its head and body together
    assert upstream.calls == 2


def _offline_ask(question, *passages):
    blocks = "\n".join(
        f'<passage id="{n}" source="{source}">\n{body}\n</passage>' for n, (source, body) in enumerate(passages, 1)
    )
    return offline.answer([{"role": "user", "content": f"{blocks}\n\nQuestion: {question}"}])


def test_offline_reads_a_table_row_with_its_header():
    table = (
        "Hotels\n\nHotels are booked by the travel desk.\n\n"
        "City | Hotel limit per night | Preferred hotel\n\nAmsterdam | 180 euros | Hotel Jansz\n\n"
        "Rotterdam | 140 euros | Hotel Maas"
    )
    text = _offline_ask("What is the hotel limit per night in Rotterdam?", ("Travel policy, Hotels", table))
    # The row, named by its columns; the header row alone is never the answer.
    assert text == "City: Rotterdam; Hotel limit per night: 140 euros; Preferred hotel: Hotel Maas [1]."


def test_offline_never_quotes_the_passages_own_heading():
    body = (
        "My laptop was lost or stolen. What do I do?\n\n"
        "Call the helpdesk on extension 4357 within one hour. They will lock the laptop remotely."
    )
    text = _offline_ask(
        "What should I do right away if my laptop is stolen?",
        ("IT FAQ, My laptop was lost or stolen. What do I do?", body),
    )
    assert text.startswith("Call the helpdesk on extension 4357 within one hour") and "lost or stolen" not in text


def test_offline_a_question_in_the_text_comes_with_its_answer():
    body = (
        "OK\n\n2. An occasional side project for a friend. Someone wants to pay you to give a talk somewhere? "
        "That's fine as long as it doesn't involve days off for travel."
    )
    text = _offline_ask("Is it fine if someone pays me to give a talk?", ("Moonlighting, OK", body))
    assert "That's fine as long as" in text and text.endswith("[1].")


def test_offline_plural_and_singular_are_one_word():
    assert offline.terms("cycles booked policies") == offline.terms("cycle booking policy")


def test_offline_how_do_i_prefers_the_instruction():
    body = (
        "Sometimes people work late for releases or emergencies. That time is not extra to normal working hours. "
        "Use your judgement to take time off to make up for the extra hours."
    )
    text = _offline_ask("What should I do after working late for a release?", ("How we work, Balanced", body))
    assert "take time off" in text


def test_offline_can_i_prefers_the_sentence_that_says_what_is_allowed():
    body = (
        "Side projects. A side business is something many people think about. "
        "A side business that differs from your job is fine, as long as it takes only a few hours a week."
    )
    text = _offline_ask("Can I run a side business?", ("Moonlighting, OK", body))
    assert (
        text == "A side business that differs from your job is fine, as long as it takes only a few hours a week [1]."
    )


# An upstream that breaks off ---------------------------------------------------------------------


def _events(response):
    """The server-sent events of a streamed response: parsed JSON, or the string "[DONE]"."""
    import json

    events = []
    for part in response.streaming_content:
        for line in part.decode().splitlines():
            if line.startswith("data: "):
                events.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
    response.close()
    return events


def _statuses():
    from llmgateway.metering import records
    from llmgateway.models import UsageRecord

    records.drain()
    return list(UsageRecord.objects.order_by("created_at").values_list("status", flat=True))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fault", ["drop", "cut"])
def test_a_stream_the_upstream_breaks_off_ends_with_an_error_event_and_is_not_cached(v1, remote_model, upstream, fault):
    """Closed mid-answer ("drop"), or ended cleanly with neither a finish nor [DONE] ("cut"): the answer is partial."""
    request = dict(REQUEST, stream=True)
    upstream.script(fault)
    events = _events(v1(request))
    assert events[0]["object"] == "chat.completion.chunk"
    assert "[DONE]" not in events
    assert events[-1]["error"]["type"] == "api_error" and events[-1]["error"]["code"] == "upstream_error"
    assert "before the answer was complete" in events[-1]["error"]["message"]
    # The partial answer was not kept: the same question is asked again, and answered whole.
    again = v1(request)
    assert again["X-Cache"] == "MISS"
    assert _events(again)[-1] == "[DONE]"
    assert upstream.calls == 2
    assert _statuses() == [502, 200]


@pytest.mark.django_db(transaction=True)
def test_a_whole_answer_the_upstream_breaks_off_is_a_502_and_not_cached(v1, remote_model, upstream):
    remote_model.max_retries = 0
    remote_model.save()
    upstream.script("drop")
    response = v1(REQUEST)
    assert response.status_code == 502 and response.json()["error"]["type"] == "api_error"
    assert v1(REQUEST)["X-Cache"] == "MISS"
    assert _statuses() == [502, 200]


@pytest.mark.parametrize("stream", [False, True])
def test_an_html_page_with_a_200_is_a_502_not_an_empty_answer(v1, remote_model, upstream, stream):
    remote_model.max_retries = 0
    remote_model.save()
    upstream.script("html")
    response = v1(dict(REQUEST, stream=stream))
    assert response.status_code == 502
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "upstream_error"
    assert v1(REQUEST)["X-Cache"] == "MISS"
    assert upstream.calls == 2
