"""A question the gateway refuses (a limit) or fails to answer (the upstream), through the API and the page."""

import logging

import pytest

from assistants.models import Message
from assistants.tests.conftest import read_events

QUESTION = "How many vacation days do I get?"
SICK = "And how many sick days?"


@pytest.fixture
def one_a_minute(workspace):
    from llmgateway.models import Limit

    return Limit.objects.create(kind="workspace", workspace=workspace, rpm=1)


def _conversation(client, assistant):
    return client.post("/api/conversations/", {"assistant": assistant.pk}, format="json").json()["id"]


def test_a_limit_is_a_429_with_retry_after_and_keeps_the_question_without_an_answer(
    api_client_for, member, assistant, one_a_minute, caplog
):
    client = api_client_for(member)
    cid = _conversation(client, assistant)
    url = f"/api/conversations/{cid}/messages/"
    first = client.post(url, {"content": QUESTION}, format="json")
    assert first.status_code == 201
    with caplog.at_level(logging.WARNING, logger="django.request"):
        refused = client.post(url, {"content": SICK}, format="json")
    assert refused.status_code == 429, refused.content
    assert refused.json()["detail"].startswith("Your quota is reached")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The question is kept; no empty "interrupted" answer is left behind, as the page shows it.
    listed = client.get(url).json()["results"]
    assert [(m["role"], m["content"] if m["role"] == "user" else m["status"]) for m in listed] == [
        ("user", QUESTION),
        ("assistant", "complete"),
        ("user", SICK),
    ]
    assert not Message.objects.filter(status="interrupted").exists()


def test_a_refused_regeneration_is_a_429_and_the_answer_stays(api_client_for, member, assistant, one_a_minute):
    client = api_client_for(member)
    url = f"/api/conversations/{_conversation(client, assistant)}/messages/"
    answer = client.post(url, {"content": QUESTION}, format="json").json()
    refused = client.post(f"/api/messages/{answer['id']}/regenerate/", {}, format="json")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    versions = client.get(f"/api/messages/{answer['id']}/versions/").json()
    assert [(v["id"], v["current"]) for v in versions] == [(answer["id"], True)]


def test_the_streamed_refusal_carries_status_and_retry_after(api_client_for, member, assistant, one_a_minute):
    client = api_client_for(member)
    url = f"/api/conversations/{_conversation(client, assistant)}/messages/"
    assert client.post(url, {"content": QUESTION}, format="json").status_code == 201
    response = client.post(url, {"content": SICK}, format="json", HTTP_ACCEPT="text/event-stream")
    events = read_events(response)
    assert [name for name, _ in events] == ["error"]
    error = events[0][1]
    assert error["status"] == 429 and error["detail"].startswith("Your quota is reached")
    assert 0 < error["retry_after"] <= 60


def test_the_page_shows_the_limit_and_keeps_only_the_question(client_for, member, assistant, one_a_minute, ask_page):
    client = client_for(member)
    cid = [d for e, d in ask_page(client, assistant, QUESTION) if e == "conversation"][0]["id"]
    events = ask_page(client, assistant, SICK, conversation=cid)
    # The status and the wait first (the page says when to ask again), then the text alone as before.
    assert [name for name, _ in events] == ["failure", "error"]
    failure, text = events[0][1], events[1][1]
    assert failure["status"] == 429 and 0 < failure["retry_after"] <= 60
    assert failure["detail"] == text and text.startswith("Your quota is reached")
    page = client.get(f"/assistants/acme/{assistant.pk}/c/{cid}/").content.decode()
    assert SICK in page and "interrupted" not in page


@pytest.fixture
def flaky(assistant):
    """The assistant answers through a local upstream that the test scripts to fail."""
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    upstream = FakeOpenAI().start()
    ModelConfig.objects.create(
        name="flaky", provider="openai-compatible", base_url=upstream.base_url, upstream_model="f", max_retries=0
    )
    assistant.model_name = "flaky"
    assistant.save()
    yield upstream
    upstream.stop()


def _transcript(client, cid):
    listed = client.get(f"/api/conversations/{cid}/messages/").json()["results"]
    return [(m["role"], m["content"], m["status"], m["error"]) for m in listed]


def test_an_upstream_failure_is_still_a_502(api_client_for, member, assistant, flaky):
    client = api_client_for(member)
    url = f"/api/conversations/{_conversation(client, assistant)}/messages/"
    flaky.script(500)
    response = client.post(url, {"content": QUESTION}, format="json")
    assert response.status_code == 502
    assert "Retry-After" not in response


def test_an_upstream_failure_before_any_text_keeps_the_question_and_no_answer(api_client_for, member, assistant, flaky):
    client = api_client_for(member)
    cid = _conversation(client, assistant)
    flaky.script(500)
    response = client.post(f"/api/conversations/{cid}/messages/", {"content": QUESTION}, format="json")
    assert response.status_code == 502
    detail = response.json()["detail"]
    # Nothing came, so nothing was kept: no "partial answer" to look for.
    assert "could not be produced" in detail and "try again" in detail.lower(), detail
    assert "partial" not in detail
    # As for a refusal: the question stays, with no empty "interrupted" answer under it.
    assert _transcript(client, cid) == [("user", QUESTION, "complete", "")]
    assert not Message.objects.filter(role="assistant").exists()


def test_the_page_says_the_same_of_an_upstream_failure_before_any_text(client_for, member, assistant, flaky, ask_page):
    client = client_for(member)
    flaky.script(503)
    events = ask_page(client, assistant, QUESTION)
    assert [name for name, _ in events] == ["conversation", "meta", "failure", "error"], events
    failure, text = events[2][1], events[3][1]
    assert failure["status"] == 503 and failure["detail"] == text
    assert "could not be produced" in text and "partial" not in text
    # A reload shows the question alone, as the live page leaves it (the question back in the box too).
    cid = events[0][1]["id"]
    page = client.get(f"/assistants/acme/{assistant.pk}/c/{cid}/").content.decode()
    assert QUESTION in page and "msg-assistant" not in page and "interrupted" not in page


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_failure_mid_answer_keeps_the_partial_answer_and_says_so(
    api_client_for, client_for, member, assistant, flaky, stream
):
    client = api_client_for(member)
    cid = _conversation(client, assistant)
    flaky.script("cut")  # two words, then the stream ends without a finish
    url = f"/api/conversations/{cid}/messages/"
    if stream:
        events = read_events(client.post(url, {"content": QUESTION}, format="json", HTTP_ACCEPT="text/event-stream"))
        assert [name for name, _ in events if name != "delta"] == ["meta", "error"], events
        partial = "".join(data for name, data in events if name == "delta")
        error = events[-1][1]
        assert error["status"] == 502
        detail = error["detail"]
    else:
        response = client.post(url, {"content": QUESTION}, format="json")
        # The answer exists, unfinished: a 201 with its status, as the list gives it.
        assert response.status_code == 201, response.content
        answer = response.json()
        assert answer["status"] == "interrupted"
        partial, detail = answer["content"], answer["error"]
    assert partial.startswith("Echo:"), partial
    assert "partial answer was kept" in detail and "could not be produced" not in detail, detail
    # The API's list, the page's reload and the live page say the same.
    assert _transcript(client, cid) == [
        ("user", QUESTION, "complete", ""),
        ("assistant", partial, "interrupted", detail),
    ]
    page = client_for(member).get(f"/assistants/acme/{assistant.pk}/c/{cid}/").content.decode()
    assert f'<span class="badge badge-warn">interrupted</span> {detail}</p>' in page
