"""Invitation links on the members page: shown to admins when no mail server would deliver the invitation."""

import pytest
from django.test import override_settings
from django.urls import reverse

from corporate.mail import delivers_mail, site_url
from workspaces.models import Invitation

pytestmark = pytest.mark.django_db

SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def invitation(workspace, owner):
    return Invitation.objects.create(workspace=workspace, email="new.hire@example.com", invited_by=owner)


def members_page(client, workspace):
    response = client.get(reverse("workspaces:members", args=[workspace.slug]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    "backend, delivered",
    [
        ("django.core.mail.backends.console.EmailBackend", False),
        ("django.core.mail.backends.locmem.EmailBackend", False),
        ("django.core.mail.backends.dummy.EmailBackend", False),
        ("django.core.mail.backends.filebased.EmailBackend", False),
        (SMTP, True),
        ("anymail.backends.mailgun.EmailBackend", True),
    ],
)
def test_mail_counts_as_delivered_only_through_a_mail_server(backend, delivered):
    with override_settings(EMAIL_BACKEND=backend):
        assert delivers_mail() is delivered


def test_admins_see_the_link_when_no_mail_server_is_configured(client_for, workspace, admin_user, invitation):
    html = members_page(client_for(admin_user), workspace)
    assert f'value="http://testserver{invitation.get_accept_url()}"' in html
    assert 'data-copy="#invitation-link-' in html
    assert "No mail server is configured" in html


@override_settings(SITE_URL="https://ai.example.com")
def test_the_link_uses_the_site_address(client_for, workspace, admin_user, invitation):
    assert site_url() == "https://ai.example.com"
    html = members_page(client_for(admin_user), workspace)
    assert f'value="https://ai.example.com{invitation.get_accept_url()}"' in html


def test_no_link_when_mail_is_delivered(client_for, workspace, admin_user, invitation):
    with override_settings(EMAIL_BACKEND=SMTP):
        html = members_page(client_for(admin_user), workspace)
    assert invitation.token not in html
    assert "new.hire@example.com" in html


def test_no_link_for_used_or_revoked_invitations(client_for, workspace, admin_user, invitation):
    from django.utils import timezone

    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=timezone.now())
    assert invitation.token not in members_page(client_for(admin_user), workspace)


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_never_see_links(role, personas, client_for, workspace, invitation):
    assert invitation.token not in members_page(client_for(personas[role]), workspace)


def test_creating_an_invitation_says_to_pass_the_link_on(client_for, workspace, admin_user):
    url = reverse("workspaces:invite", args=[workspace.slug])
    response = client_for(admin_user).post(url, {"email": "someone@example.com", "role": "member"}, follow=True)
    assert "copy its link from the list" in response.content.decode()
