"""Cached page data (corporate.pagecache): fewer queries, and every change visible on the very next request."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from corporate import pagecache

DASHBOARD = "/"


def queries_of(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


@pytest.fixture
def signed_in(client_for, member, workspace):
    client = client_for(member)
    client.get(DASHBOARD)  # sessions and the like settled; the page data cached
    return client


def test_a_cached_dashboard_makes_fewer_queries(signed_in, settings):
    cached, page = queries_of(signed_in, DASHBOARD)
    settings.PAGE_CACHE_SECONDS = 0
    uncached, same = queries_of(signed_in, DASHBOARD)
    # The two panels' four queries (workspaces with counts, invitations, assistants, conversations).
    assert uncached - cached == 4
    assert "Acme Research" in page and "Acme Research" in same


def test_a_cached_workspace_list_makes_fewer_queries(signed_in, settings):
    signed_in.get(reverse("workspaces:list"))
    cached, _ = queries_of(signed_in, reverse("workspaces:list"))
    settings.PAGE_CACHE_SECONDS = 0
    uncached, _ = queries_of(signed_in, reverse("workspaces:list"))
    assert uncached - cached == 2


def test_a_new_document_counts_on_the_next_request(signed_in, workspace, member, django_capture_on_commit_callbacks):
    from documents.ingestion import accept_upload

    assert "0 documents" in queries_of(signed_in, DASHBOARD)[1]
    with django_capture_on_commit_callbacks(execute=True):
        accept_upload(workspace, SimpleUploadedFile("a.md", b"# Hello\n\nWorld.", "text/markdown"), member)
    assert "1 document " in queries_of(signed_in, DASHBOARD)[1]
    assert "1 document" in queries_of(signed_in, reverse("workspaces:list"))[1]


def test_a_deleted_document_counts_on_the_next_request(signed_in, workspace, member):
    from documents.models import Document

    document = Document.objects.create(
        workspace=workspace,
        title="t",
        original_name="t.md",
        kind="markdown",
        size=1,
        sha256="0" * 64,
        uploaded_by=member,
    )
    assert "1 document " in queries_of(signed_in, DASHBOARD)[1]
    document.delete()
    assert "0 documents" in queries_of(signed_in, DASHBOARD)[1]


def test_a_renamed_workspace_shows_on_the_next_request(signed_in, workspace):
    signed_in.get(reverse("workspaces:list"))
    workspace.name = "Acme Renamed"
    workspace.save(update_fields=["name"])
    assert "Acme Renamed" in queries_of(signed_in, reverse("workspaces:list"))[1]
    assert "Acme Renamed" in queries_of(signed_in, DASHBOARD)[1]


def test_a_removed_member_loses_the_workspace_on_the_next_request(signed_in, workspace, member):
    from workspaces.models import Membership

    assert "Acme Research" in queries_of(signed_in, reverse("workspaces:list"))[1]
    Membership.objects.filter(workspace=workspace, user=member).delete()
    assert "Acme Research" not in queries_of(signed_in, reverse("workspaces:list"))[1]
    assert "Acme Research" not in queries_of(signed_in, DASHBOARD)[1]


def test_a_new_member_elsewhere_changes_the_member_count(signed_in, workspace, make_user):
    from workspaces.models import Membership

    assert "4 members" in queries_of(signed_in, DASHBOARD)[1]
    Membership.objects.create(workspace=workspace, user=make_user("new@example.com"), role="viewer")
    assert "5 members" in queries_of(signed_in, DASHBOARD)[1]


def test_an_invitation_shows_on_the_next_request(signed_in, other_workspace, member):
    from workspaces.models import Invitation

    Invitation.objects.create(workspace=other_workspace, email=member.email.upper())
    assert other_workspace.name in queries_of(signed_in, DASHBOARD)[1]


def test_a_new_assistant_and_conversation_show_on_the_next_request(signed_in, workspace, member):
    from assistants.models import Assistant, Conversation, Message

    assistant = Assistant.objects.create(workspace=workspace, name="Travel desk", created_by=member)
    assert "Travel desk" in queries_of(signed_in, DASHBOARD)[1]
    conversation = Conversation.objects.create(assistant=assistant, user=member, title="Flights to Oslo")
    assert "Flights to Oslo" in queries_of(signed_in, DASHBOARD)[1]
    # A new turn updates the conversation with QuerySet.update() (no signal); its messages bump the version.
    Conversation.objects.filter(pk=conversation.pk).update(title="Trains to Bergen")
    Message.objects.create(conversation=conversation, role="user", content="And trains?")
    assert "Trains to Bergen" in queries_of(signed_in, DASHBOARD)[1]


def test_a_write_in_a_transaction_is_seen_after_the_commit(signed_in, workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        workspace.name = "Acme Committed"
        workspace.save(update_fields=["name"])
    assert callbacks  # the version is bumped again when the transaction commits
    assert "Acme Committed" in queries_of(signed_in, DASHBOARD)[1]


def test_without_redis_outside_tests_nothing_is_cached(settings, signed_in):
    settings.TESTING = False
    settings.REDIS_URL = ""
    assert pagecache.enabled() is False
    calls = []
    for _ in range(2):
        pagecache.cached("x", signed_in, lambda: calls.append(1))
    assert len(calls) == 2


def test_a_user_never_sees_another_users_entry(client_for, owner, outsider, workspace, other_workspace):
    owner_page = queries_of(client_for(owner), reverse("workspaces:list"))[1]
    outsider_page = queries_of(client_for(outsider), reverse("workspaces:list"))[1]
    assert "Acme Research" in owner_page
    assert "Acme Research" not in outsider_page and other_workspace.name in outsider_page
