"""A long conversation: the page shows its latest messages, pages back, and renders each answer once."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistants import rendering, views
from assistants.models import Assistant, Conversation, Message

pytestmark = pytest.mark.django_db


def make_conversation(member, assistant, pairs, title="Long"):
    conversation = Conversation.objects.create(assistant=assistant, user=member, title=title)
    for i in range(pairs):
        question = Message.objects.create(conversation=conversation, role="user", content=f"Question number {i}?")
        Message.objects.create(
            conversation=conversation,
            role="assistant",
            question=question,
            content=f"**Answer number {i}**, see [1].",
            citations=[{"n": 1, "document_id": 1, "title": "Handbook", "chunk_id": 1, "version": "x"}],
        )
    return conversation


@pytest.fixture
def helper(workspace):
    return Assistant.objects.create(workspace=workspace, name="Helper")


def page(client, conversation, query=""):
    response = client.get(conversation.get_absolute_url() + query)
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_the_latest_messages_and_pages_back(client_for, member, helper):
    conversation = make_conversation(member, helper, 65)  # 130 messages
    client = client_for(member)
    latest = page(client, conversation)
    assert "Question number 64?" in latest and "Answer number 64" in latest
    assert "Question number 40?" in latest and "Question number 39?" not in latest  # 25 pairs: 50 messages
    assert "Show earlier messages" in latest and "Show the latest messages" not in latest

    first_shown = Message.objects.get(conversation=conversation, content="Question number 40?")
    assert f'href="?before={first_shown.pk}"' in latest
    earlier = page(client, conversation, f"?before={first_shown.pk}")
    assert "Question number 39?" in earlier and "Question number 15?" in earlier
    assert "Question number 14?" not in earlier and "Question number 40?" not in earlier
    assert "Show the latest messages" in earlier
    # A new question goes at the end of the conversation: it is asked from the latest messages.
    assert 'name="question"' in latest and 'name="question"' not in earlier

    start = Message.objects.get(conversation=conversation, content="Question number 15?")
    oldest = page(client, conversation, f"?before={start.pk}")
    assert "Question number 0?" in oldest and "Answer number 14" in oldest
    assert "Show earlier messages" not in oldest


def test_a_regenerated_answer_pages_with_its_question(client_for, member, helper):
    conversation = make_conversation(member, helper, 26)  # 52 messages: one pair is on the earlier page
    first = Message.objects.get(conversation=conversation, content="Question number 1?")
    # A later version of the first answer, written after everything else: it still reads right after its question.
    Message.objects.filter(question=first).update(current=False)
    Message.objects.create(conversation=conversation, role="assistant", question=first, content="Answer 1, again")
    latest = page(client_for(member), conversation)
    assert "Question number 1?" in latest and "Answer 1, again" in latest
    assert "Question number 0?" not in latest and "Show earlier messages" in latest


@pytest.mark.parametrize("before", ["abc", "-1", "99999999999999999999999", ""])
def test_a_bad_earlier_key_is_not_an_error(client_for, member, helper, before):
    conversation = make_conversation(member, helper, 3)
    html = page(client_for(member), conversation, f"?before={before}")
    assert "Question number 0?" in html and "Question number 2?" in html


def test_queries_are_the_same_for_a_long_and_a_short_conversation(
    client_for, member, helper, django_assert_num_queries
):
    client = client_for(member)
    short = make_conversation(member, helper, 2, "Short")
    long = make_conversation(member, helper, 80, "Long")
    with CaptureQueriesContext(connection) as few:
        page(client, short)
    # user, memberships, workspace, assistant, the conversation, the sidebar list,
    # the latest messages (with their versions), the cited documents' versions
    with django_assert_num_queries(8):
        page(client, long)
    with django_assert_num_queries(len(few.captured_queries)):
        page(client, short)


def test_answers_are_rendered_once_and_never_stale(client_for, member, helper, monkeypatch):
    conversation = make_conversation(member, helper, 30)
    rendered = []
    real = rendering.render_answer
    monkeypatch.setattr(rendering, "render_answer", lambda text: rendered.append(text) or real(text))
    client = client_for(member)
    html = page(client, conversation)
    assert len(rendered) == views.MESSAGES_SHOWN // 2
    assert "<strong>Answer number 29</strong>" in html and "/sources/1/" in html
    rendered.clear()
    again = page(client, conversation)
    assert again.count('class="cite"') == html.count('class="cite"') > 0
    assert "<strong>Answer number 29</strong>" in again
    assert rendered == []  # every answer came from the cache

    last = Message.objects.filter(conversation=conversation, role="assistant").order_by("-pk").first()
    last.content = "*Corrected* answer [1]."
    last.save(update_fields=["content"])
    html = page(client, conversation)
    assert "<em>Corrected</em> answer" in html and "Answer number 29" not in html
    assert rendered == ["*Corrected* answer [1]."]
