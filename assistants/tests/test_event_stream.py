"""Only a question's streamed answer is text/event-stream; every other answer, and every error, is JSON."""

import pytest

from assistants.tests.conftest import read_events

QUESTION = "How many vacation days do I get?"
STREAM = "text/event-stream"


@pytest.fixture
def conversation(api_client_for, member, assistant):
    client = api_client_for(member)
    return client.post("/api/conversations/", {"assistant": assistant.pk}, format="json").json()["id"]


def test_an_action_that_does_not_stream_refuses_a_client_that_takes_only_event_streams(
    api_client_for, member, conversation
):
    client = api_client_for(member)
    for url in [
        "/api/conversations/",
        f"/api/conversations/{conversation}/",
        f"/api/conversations/{conversation}/messages/",
    ]:
        response = client.get(url, HTTP_ACCEPT=STREAM)
        assert response.status_code == 406, url
        assert response["Content-Type"] == "application/json" and "detail" in response.json()
        # A client that also takes JSON gets JSON.
        response = client.get(url, HTTP_ACCEPT=f"{STREAM}, application/json;q=0.5")
        assert response.status_code == 200 and response["Content-Type"] == "application/json", url


def test_errors_of_the_streaming_actions_are_json(api_client_for, member, conversation):
    client = api_client_for(member)
    url = f"/api/conversations/{conversation}/messages/"
    response = client.post(url, {"content": ""}, format="json", HTTP_ACCEPT=STREAM)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json" and "content" in response.json()
    response = client.post("/api/messages/999999/regenerate/", {}, format="json", HTTP_ACCEPT=STREAM)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and "detail" in response.json()
    # The question itself still streams.
    response = client.post(url, {"content": QUESTION}, format="json", HTTP_ACCEPT=STREAM)
    assert response["Content-Type"].startswith(STREAM)
    events = read_events(response)
    assert events[-1][0] == "done"
    answer = events[-1][1]["message"]["id"]
    # Answers that do not stream are JSON, or 406 for a client that takes only event streams.
    assert client.get(f"/api/messages/{answer}/versions/", HTTP_ACCEPT=STREAM).status_code == 406
    response = client.post(f"/api/messages/{answer}/feedback/", {"feedback": "up"}, format="json", HTTP_ACCEPT=STREAM)
    assert response.status_code == 406 and response["Content-Type"] == "application/json"
    response = client.post(f"/api/messages/{answer}/regenerate/", {}, format="json", HTTP_ACCEPT=STREAM)
    assert response["Content-Type"].startswith(STREAM) and read_events(response)[-1][0] == "done"
