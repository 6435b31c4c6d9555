"""The conversation list: dates, pinned first, search, rename, delete through a confirmation page, export."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from assistants.conversations import grouped
from assistants.models import Conversation, Message

VACATION = "How many vacation days do I get?"


def conversation(member, assistant, title, days_ago=0, pinned=False, text="Hello"):
    when = timezone.now() - timedelta(days=days_ago)
    c = Conversation.objects.create(assistant=assistant, user=member, title=title, pinned=pinned, updated_at=when)
    q = Message.objects.create(conversation=c, role="user", content=text)
    Message.objects.create(conversation=c, role="assistant", content=f"About {text}", question=q)
    return c


def sidebar(html):
    return html[html.index('id="conversation-list"') : html.index("</nav>", html.index('id="conversation-list"'))]


def test_pinned_first_then_grouped_by_date(client_for, member, assistant):
    conversation(member, assistant, "Old plans", days_ago=40)
    conversation(member, assistant, "Last week", days_ago=4)
    conversation(member, assistant, "Pinned long ago", days_ago=90, pinned=True)
    conversation(member, assistant, "Just now")
    html = sidebar(client_for(member).get(f"/assistants/acme/{assistant.pk}/").content.decode())
    order = [html.index(t) for t in ("Pinned", "Pinned long ago", "Today", "Just now", "Previous 7 days", "Last week")]
    assert order == sorted(order)
    assert html.index("Older") < html.index("Old plans")
    assert "<time" in html and 'aria-label="pinned"' in html


def test_grouping_boundaries():
    now = timezone.now()

    def c(days, pinned=False):
        return Conversation(title=str(days), updated_at=now - timedelta(days=days), pinned=pinned)

    groups = grouped([c(0), c(1), c(3), c(20), c(300), c(300, pinned=True)], now=now)
    assert [label for label, _ in groups] == [
        "Pinned",
        "Today",
        "Yesterday",
        "Previous 7 days",
        "Previous 30 days",
        "Older",
    ]


def test_search_by_title_and_by_what_was_said(client_for, member, assistant):
    conversation(member, assistant, "Trip to Berlin", text="Meals while travelling")
    conversation(member, assistant, "Laptop", text="Which VPN client do I need?")
    client = client_for(member)
    html = sidebar(client.get(f"/assistants/acme/{assistant.pk}/?q=berlin").content.decode())
    assert "Trip to Berlin" in html and "Laptop" not in html
    html = sidebar(client.get(f"/assistants/acme/{assistant.pk}/?q=vpn").content.decode())
    assert "Laptop" in html and "Trip to Berlin" not in html and "1 found" in html
    html = sidebar(client.get(f"/assistants/acme/{assistant.pk}/?q=zebra").content.decode())
    assert "No conversation mentions" in html


def test_rename_and_pin(client_for, member, assistant):
    c = conversation(member, assistant, "Untitled")
    client = client_for(member)
    url = f"/assistants/acme/{assistant.pk}/c/{c.pk}/"
    assert client.get(url + "rename/").status_code == 200
    refused = client.post(url + "rename/", {"title": "   "})
    assert refused.status_code == 400 and "Give the conversation a title." in refused.content.decode()
    assert client.post(url + "rename/", {"title": "  Vacation plans "}).status_code == 302
    c.refresh_from_db()
    assert c.title == "Vacation plans"
    assert client.post(url + "pin/", {"pinned": "1"})["Location"] == url
    c.refresh_from_db()
    assert c.pinned
    page = client.get(url).content.decode()
    assert "Unpin" in page and "Vacation plans" in page
    # Back to where the user was (on this site only).
    assert client.post(url + "pin/", {"pinned": "0", "next": "/assistants/"})["Location"] == "/assistants/"
    assert client.post(url + "pin/", {"pinned": "0", "next": "https://evil.example/"})["Location"] == url


def test_delete_goes_through_a_confirmation_page(client_for, member, assistant):
    c = conversation(member, assistant, "To go")
    Message.objects.create(conversation=c, role="assistant", content="v2", question=c.messages.first(), current=False)
    client = client_for(member)
    url = f"/assistants/acme/{assistant.pk}/c/{c.pk}/delete/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Delete “To go”?" in html and "1 question" in html and "2 answers" in html
    assert Conversation.objects.filter(pk=c.pk).exists()
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == f"/assistants/acme/{assistant.pk}/"
    assert not Conversation.objects.filter(pk=c.pk).exists()
    assert not Message.objects.filter(conversation_id=c.pk).exists()


def test_export_as_markdown_and_json(client_for, member, assistant, ask_page):
    client = client_for(member)
    events = ask_page(client, assistant, VACATION)
    cid = events[0][1]["id"]
    base = f"/assistants/acme/{assistant.pk}/c/{cid}/export/"
    md = client.get(base + "md/")
    assert md["Content-Type"].startswith("text/markdown")
    assert 'filename="how-many-vacation-days-do-i-get.md"' in md["Content-Disposition"]
    text = md.content.decode()
    assert text.startswith(f"# {VACATION}") and "## You" in text and "## Helpdesk" in text
    assert "27 vacation days" in text and "Sources:" in text and "handbook" in text
    data = json.loads(client.get(base + "json/").content)
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert data["messages"][1]["sources"][0]["n"] == 1 and data["messages"][1]["version"] == 1
    assert client.get(base + "pdf/").status_code == 404


def test_someone_elses_conversation_is_404_everywhere(client_for, member, admin_user, assistant):
    c = conversation(member, assistant, "Mine")
    other = client_for(admin_user)
    base = f"/assistants/acme/{assistant.pk}/c/{c.pk}/"
    for method, path in [
        ("get", "rename/"),
        ("post", "rename/"),
        ("post", "pin/"),
        ("get", "delete/"),
        ("post", "delete/"),
        ("get", "export/md/"),
        ("get", "export/json/"),
    ]:
        assert getattr(other, method)(base + path, {"title": "x"}).status_code == 404, path
    c.refresh_from_db()
    assert c.title == "Mine" and not c.pinned


def test_api_rename_pin_search_and_export(api_client_for, member, admin_user, assistant):
    a = conversation(member, assistant, "Alpha", days_ago=2)
    b = conversation(member, assistant, "Beta", text="VPN please")
    client = api_client_for(member)
    assert [c["id"] for c in client.get("/api/conversations/").json()["results"]] == [b.pk, a.pk]
    response = client.patch(f"/api/conversations/{a.pk}/", {"title": "Renamed", "pinned": True}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "Renamed"
    assert [c["id"] for c in client.get("/api/conversations/").json()["results"]] == [a.pk, b.pk]
    assert client.patch(f"/api/conversations/{a.pk}/", {"pinned": "yes"}, format="json").status_code == 400
    assert [c["id"] for c in client.get("/api/conversations/?q=vpn").json()["results"]] == [b.pk]
    exported = client.get(f"/api/conversations/{b.pk}/export/?as=json").json()
    assert exported["title"] == "Beta" and exported["messages"][0]["content"] == "VPN please"
    md = client.get(f"/api/conversations/{b.pk}/export/")
    assert md["Content-Type"].startswith("text/markdown") and b"# Beta" in md.content
    assert client.get(f"/api/conversations/{b.pk}/export/?as=pdf").status_code == 400
    other = api_client_for(admin_user)
    assert other.patch(f"/api/conversations/{a.pk}/", {"title": "x"}, format="json").status_code == 404
    assert other.get(f"/api/conversations/{a.pk}/export/").status_code == 404


def test_conversation_list_queries_are_constant(client_for, member, assistant, django_assert_num_queries):
    client = client_for(member)
    conversation(member, assistant, "First")

    def count(url):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    url = f"/assistants/acme/{assistant.pk}/"
    few, few_search = count(url), count(url + "?q=hello")
    for i in range(40):
        conversation(member, assistant, f"Conversation {i}", days_ago=i, pinned=i % 7 == 0)
    # user, memberships, workspace, assistant, the conversation list
    with django_assert_num_queries(5):
        assert client.get(url).status_code == 200
    assert count(url) == few and count(url + "?q=hello") == few_search


@pytest.mark.parametrize("back", ["-1", "assistants", "é"])
def test_next_that_is_no_path_still_pins(client_for, member, assistant, back):
    c = conversation(member, assistant, "Untitled")
    response = client_for(member).post(f"/assistants/acme/{assistant.pk}/c/{c.pk}/pin/", {"pinned": "1", "next": back})
    assert response.status_code == 302
    c.refresh_from_db()
    assert c.pinned
