"""What end users see: no MIME types, checksums, "slug" or "Model: default"; timings and tokens for admins only."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from assistants.models import Message

pytestmark = pytest.mark.django_db

# Attributes a person reads (or hears) as well as the text between tags.
SHOWN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "value"}


class _Visible(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "style"}:
            self._skip += 1
        hidden = ("type", "hidden") in attrs
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value and not hidden:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in {"script", "style"}:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html):
    parser = _Visible()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture
def answered(ask_page, assistant, client_for):
    """ask(user): the user's conversation with one answer that took 4321 ms and 1333 tokens."""

    def ask(user):
        client = client_for(user)
        events = dict(ask_page(client, assistant, "How many vacation days do employees get?"))
        answer = Message.objects.get(pk=events["done"]["answer_id"])
        Message.objects.filter(pk=answer.pk).update(latency_ms=4321, prompt_tokens=1111, completion_tokens=222)
        return client, answer.conversation

    return ask


def pages_of(workspace, assistant, document, conversation):
    slug = workspace.slug
    return [
        reverse("dashboard"),
        reverse("workspaces:list"),
        reverse("workspaces:create"),
        reverse("workspaces:detail", args=[slug]),
        reverse("workspaces:members", args=[slug]),
        reverse("documents:list", args=[slug]),
        reverse("documents:detail", args=[slug, document.pk]),
        reverse("documents:search", args=[slug]) + "?q=vacation",
        reverse("assistants:home"),
        reverse("assistants:list", args=[slug]),
        reverse("assistants:chat", args=[slug, assistant.pk]),
        reverse("assistants:conversation", args=[slug, assistant.pk, conversation.pk]),
        reverse("llmgateway:home"),
    ]


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_end_users_see_no_internal_details(role, personas, workspace, assistant, handbook, answered):
    client, conversation = answered(personas[role])
    for url in pages_of(workspace, assistant, handbook, conversation):
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        text = visible_text(response.content.decode())
        assert "text/markdown" not in text, url
        assert handbook.sha256 not in text and "SHA-256" not in text, url
        assert "slug" not in text.lower(), url
        assert "Model: default" not in text, url
        assert "4321 ms" not in text and "1333 tokens" not in text, url


def test_assistant_cards_name_the_default_model(client_for, member, workspace, assistant):
    text = visible_text(client_for(member).get(reverse("assistants:list", args=[workspace.slug])).content.decode())
    assert "Model: offline" in text


def test_document_type_is_named_for_people(client_for, member, workspace, handbook):
    text = visible_text(
        client_for(member).get(reverse("documents:detail", args=[workspace.slug, handbook.pk])).content.decode()
    )
    assert "Type Markdown" in text


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_admins_see_timing_and_tokens(role, personas, workspace, assistant, answered):
    client, conversation = answered(personas[role])
    url = reverse("assistants:conversation", args=[workspace.slug, assistant.pk, conversation.pk])
    text = visible_text(client.get(url).content.decode())
    assert "4321 ms · 1333 tokens" in text


def test_streamed_answer_shows_timing_to_admins_only(ask_page, assistant, client_for, admin_user, member):
    question = "Where is the VPN gateway?"
    admin_html = dict(ask_page(client_for(admin_user), assistant, question))["done"]["html"]
    member_html = dict(ask_page(client_for(member), assistant, question))["done"]["html"]
    assert " ms · " in visible_text(admin_html) and "tokens" in visible_text(admin_html)
    assert " ms · " not in visible_text(member_html) and "tokens" not in visible_text(member_html)
