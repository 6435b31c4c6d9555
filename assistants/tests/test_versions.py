"""Regenerating an answer: for its own question and history, as a new version, with the earlier ones kept."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistants.models import Conversation, Message
from assistants.tests.conftest import read_events

VACATION = "How many vacation days do I get?"
VPN = "What is the VPN gateway?"


def events_of(events, name):
    return [data for event, data in events if event == name]


def two_questions(client, assistant, ask_page):
    first = ask_page(client, assistant, VACATION)
    cid = events_of(first, "conversation")[0]["id"]
    ask_page(client, assistant, VPN, conversation=cid)
    conversation = Conversation.objects.get(pk=cid)
    q1, a1, q2, a2 = conversation.messages.order_by("pk")
    return conversation, q1, a1, q2, a2


def shown(conversation):
    return [(m.role, m.pk) for m in conversation.messages.shown()]


def test_regenerating_an_earlier_answer_redoes_it_for_its_own_question(client_for, member, assistant, ask_page):
    client = client_for(member)
    conversation, q1, a1, q2, a2 = two_questions(client, assistant, ask_page)
    assert "vpn" in a2.content.lower()

    events = ask_page(client, assistant, "", conversation=conversation.pk, regenerate=True, answer=a1.pk)
    assert events_of(events, "meta")[0]["cache_hit"] is False
    done = events_of(events, "done")[0]
    new = Message.objects.get(pk=done["answer_id"])
    # The answer to the first question, from the first question's passages and the history before it only.
    assert new.question_id == q1.pk
    assert "27 vacation days" in new.content and "vpn" not in new.content.lower()
    sent = " ".join(m["content"] for m in new.prompt)
    assert VACATION in sent and VPN not in sent and "vpn.northwind" not in sent
    # It takes the first answer's place; the first version is kept, not shown.
    assert shown(conversation) == [("user", q1.pk), ("assistant", new.pk), ("user", q2.pk), ("assistant", a2.pk)]
    a1.refresh_from_db()
    assert a1.current is False and a1.question_id == q1.pk
    assert "2/2" in done["html"] and "Previous version" in done["html"]

    # After a reload the page reads the same: no extra answer at the bottom.
    page = client.get(conversation.get_absolute_url()).content.decode()
    assert page.index(f'id="m{new.pk}"') < page.index(VPN) < page.index(f'id="m{a2.pk}"')
    assert f'id="m{a1.pk}"' not in page
    assert "2/2" in page


def test_regenerating_the_latest_answer_replaces_it(client_for, member, assistant, ask_page):
    client = client_for(member)
    conversation, q1, a1, q2, a2 = two_questions(client, assistant, ask_page)
    # The old page form: regenerate without naming the answer means the latest one.
    events = ask_page(client, assistant, "", conversation=conversation.pk, regenerate=True)
    new = Message.objects.get(pk=events_of(events, "done")[0]["answer_id"])
    assert new.question_id == q2.pk
    assert shown(conversation) == [("user", q1.pk), ("assistant", a1.pk), ("user", q2.pk), ("assistant", new.pk)]
    assert conversation.messages.filter(role="user").count() == 2
    # The next question's history holds only the shown answers.
    ask_page(client, assistant, "And meals?", conversation=conversation.pk)
    last = conversation.messages.filter(role="assistant").latest("pk")
    # Two answers so far in the history (the first, and the second's current version), not three.
    assert [m["role"] for m in last.prompt].count("assistant") == 2


def test_switching_versions_on_the_page_is_kept(client_for, member, assistant, ask_page):
    client = client_for(member)
    conversation, q1, a1, q2, a2 = two_questions(client, assistant, ask_page)
    new_pk = events_of(ask_page(client, assistant, "", conversation.pk, True, answer=a1.pk), "done")[0]["answer_id"]
    response = client.post(f"/assistants/acme/messages/{a1.pk}/show/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="m{a1.pk}"' in html and "1/2" in html and "Next version" in html
    assert shown(conversation)[1] == ("assistant", a1.pk)
    page = client.get(conversation.get_absolute_url()).content.decode()
    assert f'id="m{a1.pk}"' in page and f'id="m{new_pk}"' not in page
    # Without htmx: back to the conversation.
    response = client.post(f"/assistants/acme/messages/{new_pk}/show/")
    assert response.status_code == 302 and response["Location"] == conversation.get_absolute_url()
    assert shown(conversation)[1] == ("assistant", new_pk)


def test_someone_elses_answer_cannot_be_regenerated_or_switched(
    client_for, member, viewer, admin_user, assistant, ask_page
):
    conversation, q1, a1, q2, a2 = two_questions(client_for(member), assistant, ask_page)
    mine = events_of(ask_page(client_for(viewer), assistant, VPN), "conversation")[0]["id"]
    # Naming another's answer in one's own conversation: 404, nothing is made.
    refused = ask_page(client_for(viewer), assistant, "", conversation=mine, regenerate=True, answer=a1.pk)
    assert refused[0][0] == "refused" and refused[0][1]["status"] == 404
    assert client_for(admin_user).post(f"/assistants/acme/messages/{a1.pk}/show/").status_code == 404
    assert Message.objects.filter(question=q1).count() == 1


def test_failed_regeneration_shows_the_earlier_version_again(client_for, member, assistant, ask_page):
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    client = client_for(member)
    conversation, q1, a1, q2, a2 = two_questions(client, assistant, ask_page)
    upstream = FakeOpenAI().start()
    try:
        ModelConfig.objects.create(
            name="flaky", provider="openai-compatible", base_url=upstream.base_url, upstream_model="f", max_retries=0
        )
        assistant.model_name = "flaky"
        assistant.save()
        upstream.script(500)
        events = ask_page(client, assistant, "", conversation=conversation.pk, regenerate=True, answer=a1.pk)
    finally:
        upstream.stop()
    assert events_of(events, "error") and not events_of(events, "done")
    assert shown(conversation) == [("user", q1.pk), ("assistant", a1.pk), ("user", q2.pk), ("assistant", a2.pk)]
    assert Message.objects.filter(question=q1).count() == 1


def test_api_regenerate_versions_and_show(api_client_for, member, assistant):
    client = api_client_for(member)
    conversation = client.post("/api/conversations/", {"assistant": assistant.pk}, format="json").json()
    url = f"/api/conversations/{conversation['id']}/messages/"
    a1 = client.post(url, {"content": VACATION}, format="json").json()
    a2 = client.post(url, {"content": VPN}, format="json").json()
    assert a1["version"] == 1 and a1["version_count"] == 1 and a1["current"] is True

    response = client.post(f"/api/messages/{a1['id']}/regenerate/", {}, format="json")
    assert response.status_code == 201, response.content
    new = response.json()
    assert new["question"] == a1["question"] and (new["version"], new["version_count"]) == (2, 2)
    assert "27 vacation days" in new["content"]

    versions = client.get(f"/api/messages/{a2['id']}/versions/").json()
    assert [v["id"] for v in versions] == [a2["id"]]
    versions = client.get(f"/api/messages/{new['id']}/versions/").json()
    assert [(v["id"], v["version"], v["current"]) for v in versions] == [(a1["id"], 1, False), (new["id"], 2, True)]

    listed = client.get(url).json()["results"]
    assert [m["id"] for m in listed] == [a1["question"], new["id"], a2["question"], a2["id"]]

    shown_again = client.post(f"/api/messages/{a1['id']}/show/").json()
    assert shown_again["current"] is True and shown_again["version"] == 1
    listed = client.get(url).json()["results"]
    assert [m["id"] for m in listed][1] == a1["id"]

    # The ask endpoint's regenerate takes the answer to redo, too.
    again = client.post(url, {"content": "", "regenerate": True, "answer": a1["id"]}, format="json").json()
    assert again["question"] == a1["question"] and again["version"] == 3
    missing = client.post(url, {"content": "", "regenerate": True, "answer": 10**6}, format="json")
    assert missing.status_code == 404


def test_api_regenerate_streams(api_client_for, member, assistant):
    client = api_client_for(member)
    conversation = client.post("/api/conversations/", {"assistant": assistant.pk}, format="json").json()
    a1 = client.post(f"/api/conversations/{conversation['id']}/messages/", {"content": VACATION}, format="json")
    response = client.post(f"/api/messages/{a1.json()['id']}/regenerate/", {"stream": True}, format="json")
    events = read_events(response)
    done = events_of(events, "done")[0]["message"]
    assert done["version"] == 2 and done["question"] == a1.json()["question"]


def test_api_regenerate_by_others_is_404_and_viewer_of_archived_workspace_is_403(
    api_client_for, member, admin_user, assistant, workspace
):
    client = api_client_for(member)
    conversation = client.post("/api/conversations/", {"assistant": assistant.pk}, format="json").json()
    a1 = client.post(f"/api/conversations/{conversation['id']}/messages/", {"content": VACATION}, format="json").json()
    other = api_client_for(admin_user)
    assert other.post(f"/api/messages/{a1['id']}/regenerate/", {}, format="json").status_code == 404
    assert other.get(f"/api/messages/{a1['id']}/versions/").status_code == 404
    assert other.post(f"/api/messages/{a1['id']}/show/").status_code == 404
    workspace.archived = True
    workspace.save(update_fields=["archived"])
    assert client.post(f"/api/messages/{a1['id']}/regenerate/", {}, format="json").status_code == 403
    assert client.get(f"/api/messages/{a1['id']}/versions/").status_code == 200


def test_chat_page_queries_do_not_grow_with_versions(client_for, member, assistant, ask_page):
    client = client_for(member)
    conversation, q1, a1, q2, a2 = two_questions(client, assistant, ask_page)
    url = conversation.get_absolute_url()

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(20):
        q = Message.objects.create(conversation=conversation, role="user", content=f"q{i}")
        for v in range(3):
            Message.objects.create(
                conversation=conversation, role="assistant", content=f"a{i}.{v}", question=q, current=v == 2
            )
    assert count() == few
