"""Answers that could not be finished: a save the database does not take, a web worker that died mid-answer."""

import logging
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

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
    # The row stays "streaming" (the database did not take it) until it is older than any answer may take.
    answer = Message.objects.get(role="assistant")
    assert answer.status == "streaming"
    Message.objects.filter(pk=answer.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert answering.interrupt_stale_answers() == 1
    answer.refresh_from_db()
    assert answer.status == "interrupted" and "cut off" in answer.error


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


# A worker that died mid-answer: the row was created "streaming" and never saved again.


def cut_off_answer(assistant, member, conversation=None, age=timedelta(hours=1)):
    conversation = conversation or Conversation.objects.create(assistant=assistant, user=member)
    turn = answering.start_turn(assistant, conversation, member, QUESTION)  # its events never run
    Message.objects.filter(pk=turn.answer.pk).update(created_at=timezone.now() - age)
    return turn.answer


def test_an_answer_streaming_past_the_longest_an_answer_may_take_reads_as_interrupted(
    client_for, api_client_for, member, assistant, settings
):
    answer = cut_off_answer(assistant, member)
    conversation = answer.conversation
    page = client_for(member).get(f"/assistants/acme/{assistant.pk}/c/{conversation.pk}/")
    assert page.status_code == 200
    assert b"interrupted" in page.content and b"cut off" in page.content
    answer.refresh_from_db()
    assert answer.status == "interrupted" and answer.error == answering.INTERRUPTED_ERROR

    other = cut_off_answer(assistant, member)
    rows = api_client_for(member).get(f"/api/conversations/{other.conversation_id}/messages/").json()["results"]
    assert [(m["status"], m["error"]) for m in rows if m["role"] == "assistant"] == [
        ("interrupted", answering.INTERRUPTED_ERROR)
    ]
    other.refresh_from_db()
    assert other.status == "interrupted"


def test_an_answer_still_within_its_deadline_stays_streaming(client_for, member, assistant, settings):
    settings.LLM_DEADLINE_SECONDS = 120
    longest = answering.longest_answer_seconds(assistant.model_name)
    assert longest > 120  # the deadline, the save and a margin
    young = cut_off_answer(assistant, member, age=timedelta(seconds=longest - 5))
    client_for(member).get(f"/assistants/acme/{assistant.pk}/c/{young.conversation_id}/")
    assert answering.interrupt_stale_answers() == 0
    young.refresh_from_db()
    assert young.status == "streaming"


def test_the_task_worker_sweeps_answers_left_streaming(member, assistant, monkeypatch):
    from corporate import workers

    stale = cut_off_answer(assistant, member)
    young = cut_off_answer(assistant, member, age=timedelta(seconds=1))
    done = Message.objects.filter(role="assistant").exclude(pk__in=[stale.pk, young.pk])
    assert not done.exists()

    class Stop(Exception):
        pass

    naps = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) > 1:
            raise Stop

    monkeypatch.setattr(workers.time, "sleep", sleep)
    with pytest.raises(Stop):
        workers._interrupt_stale_answers_forever(workers.ANSWER_SWEEP_SECONDS)
    assert dict(Message.objects.filter(role="assistant").values_list("pk", "status")) == {
        stale.pk: "interrupted",
        young.pk: "streaming",
    }


def test_reading_a_conversation_with_cut_off_answers_costs_one_query_more_however_many(
    client_for, member, assistant, django_assert_num_queries
):
    client = client_for(member)
    conversation = Conversation.objects.create(assistant=assistant, user=member)
    url = f"/assistants/acme/{assistant.pk}/c/{conversation.pk}/"
    cut_off_answer(assistant, member, conversation)
    client.get(url)  # marks it: from now on a plain read
    with CaptureQueriesContext(connection) as plain:
        assert client.get(url).status_code == 200
    for _ in range(3):
        cut_off_answer(assistant, member, conversation)
    with django_assert_num_queries(len(plain.captured_queries) + 1):  # + the one UPDATE that marks all three
        client.get(url)
    statuses = conversation.messages.filter(role="assistant").values_list("status", flat=True)
    assert list(statuses) == ["interrupted"] * 4


def test_an_interrupted_answer_can_be_regenerated(client_for, member, assistant, ask_page):
    answer = cut_off_answer(assistant, member)
    client = client_for(member)
    client.get(f"/assistants/acme/{assistant.pk}/c/{answer.conversation_id}/")
    events = ask_page(client, assistant, "", conversation=answer.conversation_id, regenerate=True, answer=answer.pk)
    done = events_of(events, "done")[0]
    again = Message.objects.get(pk=done["answer_id"])
    assert again.status == "complete" and again.current and "27 vacation days" in again.content
    assert again.question_id == answer.question_id
    answer.refresh_from_db()
    assert answer.status == "interrupted" and not answer.current
