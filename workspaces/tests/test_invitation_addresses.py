"""Invitations joined at a first sign-in: only those sent to the person's own address."""

import pytest

from workspaces.models import Invitation, Membership, Workspace

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def test_a_first_sign_in_joins_only_invitations_to_the_same_address(client, make_user, owner):
    research = Workspace.objects.create(name="Research", slug="research", created_by=owner)
    legal = Workspace.objects.create(name="Legal", slug="legal", created_by=owner)
    Invitation.objects.create(workspace=research, email="Admin@Example.com", invited_by=owner)
    # Another address, which PostgreSQL's upper() (email__iexact) still takes for this one: 'ı' is 'I' there.
    Invitation.objects.create(workspace=legal, email="admın@example.com", invited_by=owner)
    user = make_user("admin@example.com")
    response = client.post("/accounts/login/", {"username": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 302 and client.session.get("_auth_user_id") == str(user.pk)
    assert set(Membership.objects.filter(user=user).values_list("workspace__slug", flat=True)) == {"research"}
    assert Invitation.objects.get(workspace=legal).accepted_at is None
