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


@pytest.mark.parametrize(
    "accept, streams",
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        (STREAM, True),
        # A client that names event streams and takes JSON as well (as streaming clients do) gets the stream.
        (f"application/json, {STREAM}", True),
        (f"{STREAM}, application/json", True),
        (f"application/json; indent=2, {STREAM}", True),
        # text/* takes event streams without naming them: the JSON named beside it at the same q wins.
        ("text/*, application/json", False),
        # Else the higher q.
        (f"{STREAM};q=0.5, application/json", False),
        (f"application/json;q=0.5, {STREAM}", True),
        # q=0 refuses a type, also one that */* would take.
        (f"{STREAM};q=0, */*", False),
        (f"*/*, {STREAM};q=0", False),
        ("text/*, application/json;q=0.9", True),
        ("*/*;q=0.1, text/event-stream;q=0.2", True),
        # A type's own q counts, not the */* listed before it.
        (f"*/*;q=0.5, {STREAM}", True),
        ("text/event-stream;q=x, application/json", False),
    ],
)
def test_a_question_streams_when_the_client_prefers_event_streams(
    api_client_for, member, conversation, accept, streams
):
    client = api_client_for(member)
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = client.post(
        f"/api/conversations/{conversation}/messages/", {"content": QUESTION}, format="json", **headers
    )
    if streams:
        assert response.status_code == 200 and response["Content-Type"].startswith(STREAM), accept
        assert read_events(response)[-1][0] == "done"
    else:
        assert response.status_code == 201 and response["Content-Type"] == "application/json", accept
        assert response.json()["content"]
