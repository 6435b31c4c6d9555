from assistants.models import Assistant, Conversation, Message
from workspaces.tests.isolation import Endpoint, Exempt

CITED = {
    "n": 1,
    "document_id": 0,
    "chunk_id": 0,
    "title": "Gone",
    "location": "",
    "page": None,
    "snippet": "Hi",
    "score": 1.0,
    "url": "/",
}


def setup(ctx):
    # Made by someone else than every persona: only admins and owners may change it.
    ctx.assistant = Assistant.objects.create(workspace=ctx.workspace, name="Helpdesk")
    # Each persona's own assistant (the outsider's too, in acme, which they cannot reach): members change theirs.
    ctx.own_assistants = {
        name: Assistant.objects.create(workspace=ctx.workspace, name=f"Made by {name}", created_by=user)
        for name, user in ctx.users.items()
    }
    # Each persona chats in its own conversation; ids are found per persona below.
    ctx.conversations = {}
    for name, user in ctx.users.items():
        conversation = Conversation.objects.create(assistant=ctx.assistant, user=user, title="Hello")
        question = Message.objects.create(conversation=conversation, role="user", content="Hello?")
        answer = Message.objects.create(
            conversation=conversation, role="assistant", content="Hi [1]", question=question, citations=[CITED]
        )
        ctx.conversations[name] = (conversation, answer)
    # The outsider's "own" conversation is in the acme assistant, which they cannot reach.


def _assistant(path=""):
    return lambda ctx: f"/assistants/{ctx.workspace.slug}/{ctx.assistant.pk}/{path}"


def _own(path=""):
    """A page of the assistant the persona asking made; the suite sets ctx.persona before each try."""
    return lambda ctx: f"/assistants/{ctx.workspace.slug}/{ctx.own_assistants[ctx.persona].pk}/{path}"


def _to(path=""):
    """Where a form post that succeeds redirects to."""
    return lambda ctx: f"/assistants/{ctx.workspace.slug}/{path}"


def _newest(ctx):
    return f"/assistants/{ctx.workspace.slug}/{Assistant.objects.latest('pk').pk}/"


def _conv_url(ctx, path):
    return f"/assistants/{ctx.workspace.slug}/{ctx.assistant.pk}/c/{_mine(ctx).pk}/{path}"


def _answer(ctx):
    return ctx.conversations[ctx.persona][1]


def _mine(ctx):
    # The conversation of whichever persona is asking; the suite calls setup() before each try.
    return ctx.conversations[ctx.persona][0]


EDIT_FORM = {
    "name": "Renamed",
    "model_name": "",
    "temperature": "0",
    "max_tokens": "500",
    "passages": "3",
    "all_documents": "on",
}

ENDPOINTS = [
    Endpoint("assistants page", "GET", lambda ctx: f"/assistants/{ctx.workspace.slug}/", "viewer"),
    Endpoint("chat page", "GET", _assistant(), "viewer"),
    Endpoint("conversation page", "GET", lambda ctx: _mine(ctx).get_absolute_url(), "viewer"),
    Endpoint("ask", "POST", _assistant("ask/"), "viewer", data=lambda ctx: {"question": "Hello?"}),
    Endpoint(
        "delete conversation",
        "POST",
        lambda ctx: f"/assistants/{ctx.workspace.slug}/{ctx.assistant.pk}/c/{_mine(ctx).pk}/delete/",
        "viewer",
        redirect=_assistant(),
    ),
    Endpoint("rename conversation page", "GET", lambda ctx: _conv_url(ctx, "rename/"), "viewer"),
    Endpoint(
        "rename conversation",
        "POST",
        lambda ctx: _conv_url(ctx, "rename/"),
        "viewer",
        data=lambda ctx: {"title": "Renamed"},
        redirect=lambda ctx: _mine(ctx).get_absolute_url(),
    ),
    Endpoint(
        "pin conversation",
        "POST",
        lambda ctx: _conv_url(ctx, "pin/"),
        "viewer",
        data=lambda ctx: {"pinned": "1"},
        redirect=lambda ctx: _mine(ctx).get_absolute_url(),
    ),
    Endpoint("delete conversation page", "GET", lambda ctx: _conv_url(ctx, "delete/"), "viewer"),
    Endpoint("export conversation", "GET", lambda ctx: _conv_url(ctx, "export/md/"), "viewer"),
    Endpoint(
        "feedback",
        "POST",
        lambda ctx: f"/assistants/{ctx.workspace.slug}/messages/{ctx.conversations[ctx.persona][1].pk}/feedback/",
        "viewer",
        data=lambda ctx: {"feedback": "up"},
        redirect=lambda ctx: ctx.conversations[ctx.persona][1].conversation.get_absolute_url(),
    ),
    Endpoint(
        "show an answer's version",
        "POST",
        lambda ctx: f"/assistants/{ctx.workspace.slug}/messages/{_answer(ctx).pk}/show/",
        "viewer",
        redirect=lambda ctx: _mine(ctx).get_absolute_url(),
    ),
    Endpoint(
        "cited passage",
        "GET",
        lambda ctx: f"/assistants/{ctx.workspace.slug}/messages/{_answer(ctx).pk}/sources/1/",
        "viewer",
    ),
    Endpoint("new assistant page", "GET", lambda ctx: f"/assistants/{ctx.workspace.slug}/new/", "member"),
    Endpoint(
        "create assistant",
        "POST",
        lambda ctx: f"/assistants/{ctx.workspace.slug}/new/",
        "member",
        data=lambda ctx: EDIT_FORM,
        redirect=_newest,
    ),
    Endpoint(
        "try a new assistant",
        "POST",
        lambda ctx: f"/assistants/{ctx.workspace.slug}/try/",
        "member",
        data=lambda ctx: {**EDIT_FORM, "try_question": "Hello?"},
    ),
    # Someone else's assistant: admins and owners only.
    Endpoint("edit assistant page", "GET", _assistant("edit/"), "admin"),
    Endpoint(
        "save assistant",
        "POST",
        _assistant("edit/"),
        "admin",
        data=lambda ctx: EDIT_FORM,
        redirect=_assistant("edit/"),
    ),
    Endpoint(
        "try assistant",
        "POST",
        _assistant("try/"),
        "admin",
        data=lambda ctx: {**EDIT_FORM, "try_question": "Hello?"},
    ),
    Endpoint(
        "archive assistant",
        "POST",
        _assistant("archive/"),
        "admin",
        data=lambda ctx: {"archived": "1"},
        redirect=_to(),
    ),
    Endpoint("delete assistant page", "GET", _assistant("delete/"), "admin"),
    Endpoint("delete assistant", "POST", _assistant("delete/"), "admin", redirect=_to()),
    # The persona's own assistant: members too.
    Endpoint("edit own assistant page", "GET", _own("edit/"), "member"),
    Endpoint(
        "save own assistant",
        "POST",
        _own("edit/"),
        "member",
        data=lambda ctx: EDIT_FORM,
        redirect=_own("edit/"),
    ),
    Endpoint(
        "try own assistant",
        "POST",
        _own("try/"),
        "member",
        data=lambda ctx: {**EDIT_FORM, "try_question": "Hello?"},
    ),
    Endpoint(
        "archive own assistant",
        "POST",
        _own("archive/"),
        "member",
        data=lambda ctx: {"archived": "1"},
        redirect=_to(),
    ),
    Endpoint("delete own assistant page", "GET", _own("delete/"), "member"),
    Endpoint("delete own assistant", "POST", _own("delete/"), "member", redirect=_to()),
    Endpoint("usage page", "GET", lambda ctx: f"/assistants/{ctx.workspace.slug}/usage/", "admin"),
    # API
    Endpoint("assistant (API)", "GET", lambda ctx: f"/api/assistants/{ctx.assistant.pk}/", "viewer", api=True),
    Endpoint(
        "create assistant (API)",
        "POST",
        lambda ctx: "/api/assistants/",
        "member",
        api=True,
        format="json",
        data=lambda ctx: {"workspace": ctx.workspace.slug, "name": "New"},
        ok=(201,),
    ),
    Endpoint(
        "update assistant (API)",
        "PATCH",
        lambda ctx: f"/api/assistants/{ctx.assistant.pk}/",
        "admin",
        api=True,
        format="json",
        data=lambda ctx: {"instructions": "Be brief."},
    ),
    Endpoint("delete assistant (API)", "DELETE", lambda ctx: f"/api/assistants/{ctx.assistant.pk}/", "admin", api=True),
    Endpoint(
        "update own assistant (API)",
        "PATCH",
        lambda ctx: f"/api/assistants/{ctx.own_assistants[ctx.persona].pk}/",
        "member",
        api=True,
        format="json",
        data=lambda ctx: {"instructions": "Be brief."},
    ),
    Endpoint(
        "delete own assistant (API)",
        "DELETE",
        lambda ctx: f"/api/assistants/{ctx.own_assistants[ctx.persona].pk}/",
        "member",
        api=True,
    ),
    Endpoint("conversation (API)", "GET", lambda ctx: f"/api/conversations/{_mine(ctx).pk}/", "viewer", api=True),
    Endpoint(
        "start conversation (API)",
        "POST",
        lambda ctx: "/api/conversations/",
        "viewer",
        api=True,
        format="json",
        data=lambda ctx: {"assistant": ctx.assistant.pk},
        ok=(201,),
    ),
    Endpoint(
        "rename and pin conversation (API)",
        "PATCH",
        lambda ctx: f"/api/conversations/{_mine(ctx).pk}/",
        "viewer",
        api=True,
        format="json",
        data=lambda ctx: {"title": "Renamed", "pinned": True},
    ),
    Endpoint(
        "delete conversation (API)", "DELETE", lambda ctx: f"/api/conversations/{_mine(ctx).pk}/", "viewer", api=True
    ),
    Endpoint(
        "export conversation (API)",
        "GET",
        lambda ctx: f"/api/conversations/{_mine(ctx).pk}/export/",
        "viewer",
        api=True,
    ),
    Endpoint("messages (API)", "GET", lambda ctx: f"/api/conversations/{_mine(ctx).pk}/messages/", "viewer", api=True),
    Endpoint(
        "ask (API)",
        "POST",
        lambda ctx: f"/api/conversations/{_mine(ctx).pk}/messages/",
        "viewer",
        api=True,
        format="json",
        data=lambda ctx: {"content": "Hello?"},
        ok=(201,),
    ),
    Endpoint(
        "feedback (API)",
        "POST",
        lambda ctx: f"/api/messages/{ctx.conversations[ctx.persona][1].pk}/feedback/",
        "viewer",
        api=True,
        format="json",
        data=lambda ctx: {"feedback": "down"},
    ),
    Endpoint(
        "regenerate an answer (API)",
        "POST",
        lambda ctx: f"/api/messages/{_answer(ctx).pk}/regenerate/",
        "viewer",
        api=True,
        format="json",
        data=lambda ctx: {},
        ok=(201,),
    ),
    Endpoint(
        "versions of an answer (API)",
        "GET",
        lambda ctx: f"/api/messages/{_answer(ctx).pk}/versions/",
        "viewer",
        api=True,
    ),
    Endpoint(
        "show an answer's version (API)",
        "POST",
        lambda ctx: f"/api/messages/{_answer(ctx).pk}/show/",
        "viewer",
        api=True,
    ),
]

EXEMPT = [
    Exempt("assistants/", "the user's own workspaces with their assistants, to pick one (test_api_and_pages.py)"),
]
