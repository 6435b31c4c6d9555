"""Answers that could not be finished: a save the database does not take."""

import logging

import pytest
from django.db import OperationalError, connection

from assistants import answering
from assistants.models import Conversation, Message
from assistants.tests.conftest import read_events
from corporate.views import DATABASE_RETRY_AFTER, DATABASE_UNAVAILABLE_MESSAGE

QUESTION = "How many vacation days do I get?"


def events_of(events, name):
    return [data for event, data in events if event == name]


class SavesRefused:
    """Make the database refuse the answer's save (its UPDATE or DELETE) `times` times, as a database that
    stopped answering does (the gevent worker's DatabaseTimeout is an OperationalError)."""

    def __init__(self, times=None):
        self.times = times
        self.refused = 0

    def __call__(self, execute, sql, params, many, context):
        writes_answer = sql.lstrip().upper().startswith(("UPDATE", "DELETE")) and "assistants_message" in sql
        if writes_answer and (self.times is None or self.refused < self.times):
            self.refused += 1
            raise OperationalError("the database did not answer within 30 s")
        return execute(sql, params, many, context)


# As in production, each query commits on its own (no test transaction that the first refusal would spoil).
refused_saves = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(answering, "SAVE_RETRY_SECONDS", 0.2)
    monkeypatch.setattr(answering, "FIRST_SAVE_RETRY_DELAY", 0.01)


@refused_saves
def test_a_save_the_database_refuses_for_a_moment_is_tried_again(
    client_for, member, assistant, ask_page, quick_retries
):
    refuse = SavesRefused(times=2)
    with connection.execute_wrapper(refuse):
        events = ask_page(client_for(member), assistant, QUESTION)
    assert refuse.refused == 2
    assert [name for name, _ in events][-1] == "done"
    answer = Message.objects.get(pk=events_of(events, "done")[0]["answer_id"])
    assert answer.status == "complete" and "27 vacation days" in answer.content


@refused_saves
def test_a_save_the_database_never_takes_ends_the_page_stream_with_the_reason(
    client_for, member, assistant, ask_page, quick_retries, caplog
):
    caplog.set_level(logging.INFO)
    refuse = SavesRefused()
    with connection.execute_wrapper(refuse):
        events = ask_page(client_for(member), assistant, QUESTION)
    assert refuse.refused >= 2  # tried again before giving up
    names = [name for name, _ in events]
    assert "done" not in names and names[-2:] == ["failure", "error"]
    assert "27 vacation days" in "".join(events_of(events, "delta"))  # what the page shows, and keeps
    failure = events_of(events, "failure")[0]
    assert failure == {
        "detail": f"The answer could not be saved. {DATABASE_UNAVAILABLE_MESSAGE}",
        "status": 503,
        "retry_after": DATABASE_RETRY_AFTER,
    }
    assert events_of(events, "error") == [failure["detail"]]
    # One warning, no traceback.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname) for r in warnings] == [("assistants.answering", "WARNING")]
    assert "not saved" in warnings[0].getMessage() and warnings[0].exc_info is None
    # The row stays "streaming": the database did not take it.
    assert Message.objects.get(role="assistant").status == "streaming"


@refused_saves
def test_a_save_the_database_never_takes_is_a_503_in_the_api_stream_and_json(
    api_client_for, member, assistant, quick_retries
):
    client = api_client_for(member)
    conversation = Conversation.objects.create(assistant=assistant, user=member)
    url = f"/api/conversations/{conversation.pk}/messages/"
    with connection.execute_wrapper(SavesRefused()):
        streamed = read_events(client.post(url, {"content": QUESTION, "stream": True}, format="json"))
        whole = client.post(url, {"content": QUESTION}, format="json")
    assert streamed[-1] == (
        "error",
        {
            "detail": f"The answer could not be saved. {DATABASE_UNAVAILABLE_MESSAGE}",
            "status": 503,
            "retry_after": DATABASE_RETRY_AFTER,
        },
    )
    assert whole.status_code == 503 and whole["Retry-After"] == str(DATABASE_RETRY_AFTER)
    assert "could not be saved" in whole.json()["detail"]


@refused_saves
def test_a_consumer_that_left_and_a_save_refused_log_one_warning(member, assistant, quick_retries, caplog):
    conversation = Conversation.objects.create(assistant=assistant, user=member)
    turn = answering.start_turn(assistant, conversation, member, QUESTION)
    events = turn.events()
    assert next(events)[0] == "meta"
    assert next(events)[0] == "delta"
    with connection.execute_wrapper(SavesRefused()):
        events.close()  # the page's Stop, while the database does not answer: nothing raised
    assert not turn.saved
    assert [r.levelname for r in caplog.records if r.name == "assistants.answering"] == ["WARNING"]
