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


def test_an_upstream_failure_is_still_a_502(api_client_for, member, assistant):
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    client = api_client_for(member)
    url = f"/api/conversations/{_conversation(client, assistant)}/messages/"
    upstream = FakeOpenAI().start()
    try:
        ModelConfig.objects.create(
            name="flaky", provider="openai-compatible", base_url=upstream.base_url, upstream_model="f", max_retries=0
        )
        assistant.model_name = "flaky"
        assistant.save()
        upstream.script(500)
        response = client.post(url, {"content": QUESTION}, format="json")
    finally:
        upstream.stop()
    assert response.status_code == 502
    assert "Retry-After" not in response
