import html
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from workspaces import permissions, services
from workspaces.models import SLUG_VALIDATOR, Invitation, Membership, Workspace


def members_url(ws):
    return reverse("workspaces:members", args=[ws.slug])


def test_can_follows_the_role_ladder(workspace, owner, admin_user, member, viewer, outsider):
    assert permissions.can(viewer, "chat", workspace)
    assert not permissions.can(viewer, "upload", workspace)
    assert permissions.can(member, "upload", workspace)
    assert not permissions.can(member, "manage_members", workspace)
    assert permissions.can(admin_user, "manage_keys", workspace)
    assert not permissions.can(admin_user, "delete_workspace", workspace)
    assert permissions.can(owner, "delete_workspace", workspace)
    assert not permissions.can(outsider, "view", workspace)


def test_archived_workspace_is_read_only(workspace, member):
    workspace.archived = True
    workspace.save()
    assert permissions.can(member, "view", workspace)
    assert not permissions.can(member, "upload", workspace)
    assert "archived" in permissions.why_not(member, "upload", workspace)


def test_unknown_action_is_a_programming_error(workspace, member):
    with pytest.raises(ValueError):
        permissions.can(member, "fly", workspace)


def test_anonymous_and_inactive_users_see_nothing(workspace, member, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    assert permissions.workspace_ids(AnonymousUser()) == []
    member.is_active = False
    assert permissions.workspace_ids(member) == []


def test_restricted_user_sees_one_workspace(workspace, member):
    other = services.create_workspace(member, name="Side project", slug="side")
    permissions.forget(member)
    assert set(permissions.workspace_ids(member)) == {workspace.pk, other.pk}
    permissions.restrict_to_workspace(member, other.pk)
    assert permissions.workspace_ids(member) == [other.pk]


def test_user_without_workspace_sees_empty_lists(client_for, api_client_for, outsider, workspace):
    Membership.objects.filter(user=outsider).delete()
    page = client_for(outsider).get(reverse("workspaces:list"))
    assert page.status_code == 200
    assert b"No workspaces yet" in page.content
    assert b"Acme" not in page.content
    body = api_client_for(outsider).get("/api/workspaces/").json()
    assert body["count"] == 0 and body["results"] == []


def test_last_owner_cannot_be_demoted_or_removed_or_leave(client_for, workspace, owner):
    membership = Membership.objects.get(workspace=workspace, user=owner)
    with pytest.raises(services.WorkspaceError, match="at least one owner"):
        services.change_role(owner, membership, "admin")
    with pytest.raises(services.WorkspaceError, match="last owner"):
        services.leave(owner, workspace)
    response = client_for(owner).post(
        reverse("workspaces:member_role", args=[workspace.slug, membership.pk]), {"role": "viewer"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "owner"


def test_second_owner_allows_demotion(workspace, owner, admin_user):
    admin_membership = Membership.objects.get(workspace=workspace, user=admin_user)
    services.change_role(owner, admin_membership, "owner")
    own = Membership.objects.get(workspace=workspace, user=owner)
    services.change_role(owner, own, "member")
    own.refresh_from_db()
    assert own.role == "member"


def test_admin_cannot_make_owners_or_touch_owners(client_for, workspace, owner, admin_user, member):
    member_membership = Membership.objects.get(workspace=workspace, user=member)
    response = client_for(admin_user).post(
        reverse("workspaces:member_role", args=[workspace.slug, member_membership.pk]), {"role": "owner"}
    )
    assert response.status_code == 403
    assert b"Only an owner" in response.content
    owner_membership = Membership.objects.get(workspace=workspace, user=owner)
    response = client_for(admin_user).post(
        reverse("workspaces:member_remove", args=[workspace.slug, owner_membership.pk])
    )
    assert response.status_code == 403
    assert Membership.objects.filter(pk=owner_membership.pk).exists()


def test_unknown_role_is_refused(client_for, workspace, admin_user, member):
    m = Membership.objects.get(workspace=workspace, user=member)
    response = client_for(admin_user).post(
        reverse("workspaces:member_role", args=[workspace.slug, m.pk]), {"role": "emperor"}, follow=True
    )
    assert b"Choose one of the listed roles" in response.content
    m.refresh_from_db()
    assert m.role == "member"


def test_viewer_gets_403_with_reason(client_for, workspace, viewer):
    response = client_for(viewer).get(reverse("workspaces:settings", args=[workspace.slug]))
    assert response.status_code == 403
    assert b"You need the admin role or higher to change workspace settings" in response.content


def field_error(body, name):
    """The error text rendered under a form field (templates/partials/form.html), or None."""
    match = re.search(rf'<small class="field-error" id="id_{name}_error">(.*?)</small>', body, re.S)
    return html.unescape(match.group(1)) if match else None


def test_create_workspace_page_and_field_errors(client_for, member, workspace):
    client = client_for(member)
    response = client.post(reverse("workspaces:create"), {"name": "", "slug": "acme", "description": ""})
    assert response.status_code == 400
    body = response.content.decode()
    assert field_error(body, "name") == "This field is required."
    assert field_error(body, "slug") == "A workspace with this short name already exists. Choose another."
    # Whichever check refuses the slug (the form's or the model's), the person reads the same rule.
    for slug in ["Bad Slug!", "UPPER", "under_score", "-edge-"]:
        response = client.post(reverse("workspaces:create"), {"name": "x" * 101, "slug": slug})
        body = response.content.decode()
        assert response.status_code == 400
        assert field_error(body, "name") == "Ensure this value has at most 100 characters (it has 101)."
        assert field_error(body, "slug") == SLUG_VALIDATOR.message, slug
        assert not Workspace.objects.filter(slug=slug).exists()
    response = client.post(reverse("workspaces:create"), {"name": "Marketing", "slug": "marketing"})
    assert response.status_code == 302
    assert Membership.objects.get(workspace__slug="marketing", user=member).role == "owner"


def test_list_page_counts_in_constant_queries(client_for, member, django_assert_max_num_queries, make_user):
    client = client_for(member)
    client.get(reverse("workspaces:list"))  # warm the session
    for i in range(2):
        services.create_workspace(member, name=f"Team {i}", slug=f"team-{i}")

    def count_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("workspaces:list"))
        assert response.status_code == 200
        return len(ctx.captured_queries)

    few = count_queries()
    for i in range(2, 50):
        ws = services.create_workspace(member, name=f"Team {i}", slug=f"team-{i}")
        Membership.objects.create(workspace=ws, user=make_user(f"u{i}@example.com"), role="viewer")
    assert count_queries() == few


def test_list_page_query_budget(client_for, member, workspace, django_assert_num_queries, settings):
    client = client_for(member)
    settings.PAGE_CACHE_SECONDS = 0
    client.get(reverse("workspaces:list"))
    # user, the workspace ids, the workspaces with counts, pending invitations
    # (the session comes from the cache)
    with django_assert_num_queries(4):
        response = client.get(reverse("workspaces:list"))
    assert b"Acme Research" in response.content
    assert b"4 members" in response.content
    # With the page data cached (corporate.pagecache): user, the workspace ids.
    settings.PAGE_CACHE_SECONDS = 300
    client.get(reverse("workspaces:list"))
    with django_assert_num_queries(2):
        response = client.get(reverse("workspaces:list"))
    assert b"Acme Research" in response.content and b"4 members" in response.content


def test_members_page_constant_queries(client_for, admin_user, workspace, make_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(admin_user)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(members_url(workspace)).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    for i in range(30):
        Membership.objects.create(workspace=workspace, user=make_user(f"m{i}@example.com"), role="viewer")
        Invitation.objects.create(workspace=workspace, email=f"i{i}@example.com")
    assert count() == before


# Invitations


def test_invite_and_accept_by_link(client_for, workspace, admin_user, make_user):
    response = client_for(admin_user).post(
        reverse("workspaces:invite", args=[workspace.slug]), {"email": "New.Hire@example.com", "role": "member"}
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="new.hire@example.com")
    # The link uses the address the admin used, not a configured default.
    assert len(mail.outbox) == 1 and "http://testserver" + invitation.get_accept_url() in mail.outbox[0].body
    newcomer = make_user("new.hire@example.com")
    # Already in a workspace, so signing in does not accept the invitation by itself.
    services.create_workspace(newcomer, name="Own", slug="own")
    client = client_for(newcomer)
    page = client.get(invitation.get_accept_url())
    assert b"Join Acme Research" in page.content
    response = client.post(invitation.get_accept_url())
    assert response.status_code == 302
    assert Membership.objects.get(workspace=workspace, user=newcomer).role == "member"
    # Used once only: the invitee is sent to the workspace, anyone else is told.
    assert client.post(invitation.get_accept_url()).status_code == 302
    again = client_for(make_user("other@example.com")).post(invitation.get_accept_url())
    assert again.status_code == 410
    assert b"already been used" in again.content


def test_invitation_for_another_email_cannot_be_accepted(client_for, workspace, admin_user, outsider):
    invitation = services.invite(admin_user, workspace, "someone.else@example.com", "member")
    response = client_for(outsider).post(invitation.get_accept_url())
    assert response.status_code == 403
    assert b"sent to another email address" in response.content
    assert b"Acme Research" not in response.content
    assert not Membership.objects.filter(workspace=workspace, user=outsider).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.parametrize("state", ["expired", "revoked"])
def test_expired_or_revoked_invitation_changes_nothing(client_for, workspace, admin_user, make_user, state):
    invitation = services.invite(admin_user, workspace, "late@example.com", "member")
    if state == "expired":
        invitation.expires_at = timezone.now() - timedelta(minutes=1)
        invitation.save()
    else:
        services.revoke(admin_user, invitation)
    late = make_user("late@example.com")
    response = client_for(late).post(invitation.get_accept_url())
    assert response.status_code == 410
    assert state.encode() in response.content
    assert not Membership.objects.filter(workspace=workspace, user=late).exists()


def test_unknown_invitation_token_is_404(client_for, member):
    assert client_for(member).get("/workspaces/invitations/not-a-token/").status_code == 404


def test_resend_gives_a_new_link(workspace, admin_user):
    invitation = services.invite(admin_user, workspace, "again@example.com", "viewer")
    old_token = invitation.token
    services.resend(admin_user, invitation)
    assert invitation.token != old_token
    assert len(mail.outbox) == 2
    assert not Invitation.objects.filter(token=old_token).exists()


def test_admin_cannot_invite_owner_and_duplicates_are_refused(workspace, admin_user, member):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.invite(admin_user, workspace, "boss@example.com", "owner")
    with pytest.raises(services.WorkspaceError, match="already a member"):
        services.invite(admin_user, workspace, member.email, "viewer")
    services.invite(admin_user, workspace, "dup@example.com", "viewer")
    with pytest.raises(services.WorkspaceError, match="pending invitation"):
        services.invite(admin_user, workspace, "DUP@example.com", "viewer")


def test_first_sign_in_accepts_pending_invitations(client, workspace, admin_user, make_user):
    services.invite(admin_user, workspace, "first@example.com", "viewer")
    make_user("first@example.com", password="first sign in secret")
    response = client.post(reverse("login"), {"username": "first@example.com", "password": "first sign in secret"})
    assert response.status_code == 302
    assert Membership.objects.get(workspace=workspace, user__email="first@example.com").role == "viewer"


def test_delete_workspace_needs_the_slug(client_for, workspace, owner):
    client = client_for(owner)
    response = client.post(reverse("workspaces:delete", args=[workspace.slug]), {"confirm": "wrong"})
    assert response.status_code == 400
    assert b"to confirm" in response.content
    assert Workspace.objects.filter(pk=workspace.pk).exists()
    response = client.post(reverse("workspaces:delete", args=[workspace.slug]), {"confirm": "acme"})
    assert response.status_code == 302
    assert not Workspace.objects.filter(pk=workspace.pk).exists()


@pytest.mark.parametrize("value", ["true", "yes", "", "2"])
def test_archive_needs_an_explicit_choice(client_for, workspace, admin_user, value):
    workspace.archived = True
    workspace.save()
    response = client_for(admin_user).post(
        reverse("workspaces:archive", args=[workspace.slug]), {"archived": value}, follow=True
    )
    assert b"Choose to archive" in response.content
    workspace.refresh_from_db()
    assert workspace.archived is True


# Object-level rules: members change what they created; admins and owners change everything.


def _assistant(workspace, creator, name="Helper"):
    from assistants.models import Assistant

    return Assistant.objects.create(workspace=workspace, name=name, created_by=creator)


def _document(workspace, uploader, title="handbook"):
    from django.core.files.base import ContentFile

    from documents.models import Chunk, Document

    text = "Staff get 27 vacation days a year."
    document = Document(
        workspace=workspace,
        title=title,
        original_name=f"{title}.txt",
        kind="text",
        content_type="text/plain",
        size=len(text),
        sha256=title.ljust(64, "0"),
        status="ready",
        chunk_count=2,
        uploaded_by=uploader,
    )
    document.file.save(f"{title}.txt", ContentFile(text.encode()), save=False)
    document.save()
    for position in range(2):
        Chunk.objects.create(
            document=document,
            workspace=workspace,
            position=position,
            text=text,
            start=0,
            end=len(text),
            token_estimate=9,
        )
    return document


def test_members_change_only_what_they_created(workspace, owner, admin_user, member, viewer, make_user):
    other = make_user("colleague@example.com")
    Membership.objects.create(workspace=workspace, user=other, role="member")
    mine, theirs = _assistant(workspace, member), _assistant(workspace, other)
    doc_mine, doc_theirs = _document(workspace, member, "mine"), _document(workspace, other, "theirs")
    assert permissions.can(member, "edit_assistants", workspace, mine)
    assert not permissions.can(member, "edit_assistants", workspace, theirs)
    assert permissions.can(member, "edit_documents", workspace, doc_mine)
    assert not permissions.can(member, "edit_documents", workspace, doc_theirs)
    assert permissions.why_not(member, "edit_documents", workspace, doc_theirs) == (
        "As a member you can change only the documents you uploaded; an admin or owner can change anyone's."
    )
    # Without an object the workspace-level rule answers: members may edit (their own) things.
    assert permissions.can(member, "edit_assistants", workspace)
    for boss in (admin_user, owner):
        assert permissions.can(boss, "edit_assistants", workspace, theirs)
        assert permissions.can(boss, "edit_documents", workspace, doc_theirs)
    # A viewer changes nothing, not even what they made before being made a viewer.
    assert not permissions.can(viewer, "edit_assistants", workspace, _assistant(workspace, viewer))
    # Things whose creator is gone (deleted account) are for admins.
    orphan = _assistant(workspace, None)
    assert not permissions.can(member, "edit_assistants", workspace, orphan)
    assert permissions.can(admin_user, "edit_assistants", workspace, orphan)


def test_object_rules_need_a_creator_field(workspace, member):
    with pytest.raises(ValueError, match="creator_field"):
        permissions.why_not(member, "edit_documents", workspace, Membership(workspace=workspace, user=member))


def test_member_is_refused_someone_elses_assistant_everywhere(client_for, api_client_for, workspace, owner, member):
    theirs = _assistant(workspace, owner, "Owner's helper")
    client = client_for(member)
    base = f"/assistants/{workspace.slug}/{theirs.pk}/"
    for method, path, data in [
        ("get", "edit/", None),
        ("post", "edit/", {"name": "Taken over"}),
        ("post", "archive/", {"archived": "1"}),
        ("get", "delete/", None),
        ("post", "delete/", None),
    ]:
        response = getattr(client, method)(base + path, data or {})
        assert response.status_code == 403, (method, path)
        assert b"you can change only the assistants you created" in response.content
    api = api_client_for(member)
    response = api.patch(f"/api/assistants/{theirs.pk}/", {"name": "Taken over"}, format="json")
    assert response.status_code == 403
    assert "only the assistants you created" in response.json()["detail"]
    assert api.delete(f"/api/assistants/{theirs.pk}/").status_code == 403
    theirs.refresh_from_db()
    assert theirs.name == "Owner's helper" and not theirs.archived
    # The chat page offers no Edit button for it; it does for the member's own.
    assert f'href="{base}edit/"'.encode() not in client.get(base).content
    mine = _assistant(workspace, member, "Mine")
    assert (
        f'href="/assistants/{workspace.slug}/{mine.pk}/edit/"'.encode() in client.get(mine.get_absolute_url()).content
    )


def test_member_is_refused_someone_elses_document_everywhere(client_for, api_client_for, workspace, owner, member):
    theirs = _document(workspace, owner, "owners")
    client = client_for(member)
    base = f"/documents/{workspace.slug}/{theirs.pk}/"
    for method, path in [("get", "delete/"), ("post", "delete/"), ("post", "reprocess/"), ("post", "cancel/")]:
        response = getattr(client, method)(base + path)
        assert response.status_code == 403, (method, path)
        assert b"you can change only the documents you uploaded" in response.content
    api = api_client_for(member)
    assert api.delete(f"/api/documents/{theirs.pk}/").status_code == 403
    assert api.post(f"/api/documents/{theirs.pk}/reprocess/").status_code == 403
    theirs.refresh_from_db()
    assert theirs.status == "ready"
    # The document page offers no Delete or Re-process to the member; the owner gets both.
    page = client.get(base).content
    assert f'href="{base}delete/"'.encode() not in page and b"Re-process" not in page
    page = client_for(owner).get(base).content
    assert f'href="{base}delete/"'.encode() in page and b"Re-process" in page


def test_deleting_an_assistant_says_what_is_lost(client_for, workspace, owner, member, viewer):
    from assistants.models import Assistant, Conversation, Message

    assistant = _assistant(workspace, member)
    for user in (member, viewer):
        conversation = Conversation.objects.create(assistant=assistant, user=user, title="Hi")
        Message.objects.create(conversation=conversation, role="user", content="Hello?")
        Message.objects.create(conversation=conversation, role="assistant", content="Hi")
    url = reverse("assistants:delete", args=[workspace.slug, assistant.pk])
    # The editor links to the confirmation page; nothing is deleted by a GET.
    edit = client_for(member).get(reverse("assistants:edit", args=[workspace.slug, assistant.pk])).content.decode()
    assert f'href="{url}"' in edit
    page = client_for(owner).get(url).content.decode()
    assert "<strong>2 conversations</strong>" in page and "of 2 people" in page and "4 messages" in page
    assert Assistant.objects.filter(pk=assistant.pk).exists()
    response = client_for(owner).post(url)
    assert response.status_code == 302
    assert not Assistant.objects.filter(pk=assistant.pk).exists()
    assert not Conversation.objects.filter(assistant_id=assistant.pk).exists()


def test_confirmation_page_query_budget(client_for, workspace, owner, member, django_assert_num_queries):
    from assistants.models import Conversation

    assistant = _assistant(workspace, member)
    for _ in range(3):
        Conversation.objects.create(assistant=assistant, user=member)
    client = client_for(owner)
    url = reverse("assistants:delete", args=[workspace.slug, assistant.pk])
    client.get(url)
    # user (the session is in the cache), memberships (roles), workspace, assistant, the counts of what is lost
    with django_assert_num_queries(5):
        assert client.get(url).status_code == 200


def test_deleting_a_document_or_workspace_says_what_is_lost(client_for, workspace, owner, member):
    document = _document(workspace, member)
    page = client_for(member).get(reverse("documents:delete", args=[workspace.slug, document.pk])).content.decode()
    assert "its 2 passages" in page
    _assistant(workspace, member)
    settings_page = client_for(owner).get(reverse("workspaces:settings", args=[workspace.slug])).content.decode()
    assert "for its 4 members" in settings_page
    assert "its 1 document and their passages" in settings_page
    assert "1 assistant and everyone's conversations" in settings_page
