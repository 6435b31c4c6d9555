"""User management for staff: who may use it, and that every action does what it says and is audited."""

import re

import pytest
from rest_framework.authtoken.models import Token

from audit.models import AuditEvent
from corporate.models import User
from llmgateway.models import ApiKey


@pytest.fixture
def staff(make_user):
    return make_user("staff@example.com", is_staff=True, full_name="Sam Staff")


@pytest.fixture
def boss(db, django_user_model):
    return django_user_model.objects.create_superuser(email="boss@example.com", password="pw-long-enough-1")


def last(action):
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


PATHS = ["/people/", "/people/new/", "/people/{pk}/"]
POSTS = ["/people/{pk}/deactivate/", "/people/{pk}/reactivate/", "/people/{pk}/password-reset/"]


def test_everyone_but_staff_gets_403(client_for, member, admin_user, owner, workspace, mailoutbox):
    for user in [member, admin_user, owner]:
        client = client_for(user)
        for path in PATHS:
            response = client.get(path.format(pk=member.pk))
            assert response.status_code == 403
            assert "User management is for staff." in response.content.decode()
        for path in POSTS:
            assert client.post(path.format(pk=member.pk)).status_code == 403
    member.refresh_from_db()
    assert member.is_active and mailoutbox == []


def test_anonymous_is_sent_to_sign_in(client, member):
    response = client.get("/people/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post(f"/people/{member.pk}/deactivate/").status_code == 302
    member.refresh_from_db()
    assert member.is_active


def test_list_and_search(client_for, staff, workspace, member, viewer):
    client = client_for(staff)
    page = client.get("/people/")
    assert page.status_code == 200
    emails = [p.email for p in page.context["people"]]
    assert {"member@example.com", "viewer@example.com", "staff@example.com"} <= set(emails)
    found = client.get("/people/", {"q": "Victor"}).context["people"]
    assert [p.email for p in found] == ["viewer@example.com"]
    assert found[0].workspace_count == 1
    viewer.is_active = False
    viewer.save()
    assert [p.email for p in client.get("/people/", {"status": "inactive"}).context["people"]] == ["viewer@example.com"]
    assert [p.email for p in client.get("/people/", {"status": "staff"}).context["people"]] == ["staff@example.com"]
    assert client.get("/people/", {"status": "martian"}).status_code == 400


def test_list_queries_do_not_grow_with_users(client_for, staff, make_user, workspace, django_assert_num_queries):
    client = client_for(staff)
    client.get("/people/")
    # 2 queries (the session comes from the cache): the user, a page of users with their workspace counts.
    with django_assert_num_queries(2):
        client.get("/people/")
    for i in range(60):
        make_user(f"person{i}@example.com")
    with django_assert_num_queries(2):
        response = client.get("/people/")
        assert len(response.context["people"]) == 50 and response.context["has_next"]
    second = client.get("/people/", {"page": 2}).context["people"]
    assert len(second) == User.objects.count() - 50 and not set(second) & set(response.context["people"])


def test_detail_shows_workspaces_roles_and_last_sign_in(
    client, client_for, staff, member, workspace, other_workspace, django_assert_num_queries
):
    client.post("/accounts/login/", {"username": "member@example.com", "password": "correct horse battery"})
    staff_client = client_for(staff)
    staff_client.get(f"/people/{member.pk}/")
    # 5 queries (the session comes from the cache): the user, the person, their memberships with workspaces, events by them, events about them.
    with django_assert_num_queries(5):
        page = staff_client.get(f"/people/{member.pk}/")
    text = page.content.decode()
    assert "Acme Research" in text and "badge-member" in text
    assert "Globex" not in text
    member.refresh_from_db()
    assert member.last_login is not None and member.last_login.strftime("%Y-%m-%d %H:%M") in text
    assert "Signed in" in text
    assert staff_client.get("/people/999999/").status_code == 404


def test_create_with_a_mailed_link(client_for, staff, mailoutbox, client):
    response = client_for(staff).post(
        "/people/new/", {"email": "New.Hire@Example.com", "full_name": "New Hire", "how": "mail"}
    )
    user = User.objects.get(email="new.hire@example.com")
    assert response.status_code == 302 and response["Location"] == f"/people/{user.pk}/"
    assert not user.has_usable_password()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new.hire@example.com"]
    link = re.search(r"https?://\S+", mailoutbox[0].body).group(0)
    assert last("user.create").actor_email == "staff@example.com"
    assert last("user.welcome_sent").object_id == str(user.pk)
    # The link lets them choose a password and sign in.
    path = link.split("testserver", 1)[1]
    form = client.get(path, follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a brand new secret", "new_password2": "a brand new secret"}
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a brand new secret")


def test_create_with_an_initial_password(client_for, staff, mailoutbox):
    client = client_for(staff)
    response = client.post(
        "/people/new/",
        {
            "email": "p@example.com",
            "how": "password",
            "password1": "a long initial secret",
            "password2": "a long initial secret",
        },
    )
    assert response.status_code == 302
    assert User.objects.get(email="p@example.com").check_password("a long initial secret")
    assert mailoutbox == []
    assert "a long initial secret" not in str(list(AuditEvent.objects.values("changes", "details")))


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "not-an-email", "how": "mail"}, "email", "Enter a valid email address."),
        ({"email": "member@example.com", "how": "mail"}, "email", "A user with that email already exists."),
        (
            {"email": "x@example.com", "how": "password", "password1": "", "password2": ""},
            "password1",
            "Enter the initial password",
        ),
        (
            {"email": "x@example.com", "how": "password", "password1": "abcdefghijk", "password2": "abcdefghijkl"},
            "password2",
            "differ",
        ),
        (
            {"email": "x@example.com", "how": "password", "password1": "12345678901", "password2": "12345678901"},
            "password1",
            "entirely numeric",
        ),
        ({"email": "x@example.com", "how": "teleport"}, "how", "Select a valid choice"),
    ],
)
def test_create_refuses_bad_input_and_keeps_it(client_for, staff, member, data, field, message):
    response = client_for(staff).post("/people/new/", {"full_name": "Kept Name", **data})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert "Kept Name" in response.content.decode()  # nothing the user typed is lost
    assert not User.objects.filter(email="x@example.com").exists()


def test_deactivate_ends_sessions_and_drops_tokens_and_keys(client_for, staff, member, workspace, api_client_for):
    member_client = client_for(member)
    assert member_client.get("/workspaces/").status_code == 200
    Token.objects.create(user=member)
    key, full = ApiKey.create(workspace, "CI", member)
    response = client_for(staff).post(f"/people/{member.pk}/deactivate/", REMOTE_ADDR="192.0.2.50")
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.is_active and member.session_generation == 1
    assert not Token.objects.filter(user=member).exists()
    # The session is over; the key no longer works.
    assert member_client.get("/workspaces/").status_code == 302
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    assert api.get("/v1/models").status_code == 401
    event = last("user.deactivate")
    assert (event.actor_email, event.object_id, event.ip_address) == ("staff@example.com", str(member.pk), "192.0.2.50")
    assert event.changes == {"is_active": [True, False]}

    client_for(staff).post(f"/people/{member.pk}/reactivate/")
    member.refresh_from_db()
    assert member.is_active and member.session_generation == 1
    assert last("user.reactivate").actor_email == "staff@example.com"
    # The old session stays void after reactivation.
    assert member_client.get("/workspaces/").status_code == 302


def test_reset_password_mail(client_for, staff, member, mailoutbox):
    response = client_for(staff).post(f"/people/{member.pk}/password-reset/")
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["member@example.com"]
    assert "/accounts/reset/" in mailoutbox[0].body
    assert member.check_password("correct horse battery")  # the old one works until they choose
    event = last("user.password_reset_sent")
    assert (event.actor_email, event.object_id) == ("staff@example.com", str(member.pk))
    # A deactivated account gets no mail, and a clear message.
    member.is_active = False
    member.save()
    page = client_for(staff).post(f"/people/{member.pk}/password-reset/", follow=True)
    assert "Reactivate it before sending a password mail." in page.content.decode()
    assert len(mailoutbox) == 1


def test_rules_no_self_deactivation_and_superusers_by_superusers_only(client_for, staff, boss):
    page = client_for(staff).post(f"/people/{staff.pk}/deactivate/", follow=True)
    assert "You cannot deactivate your own account." in page.content.decode()
    page = client_for(staff).post(f"/people/{boss.pk}/deactivate/", follow=True)
    assert "Only a superuser can change a superuser" in page.content.decode()
    staff.refresh_from_db()
    boss.refresh_from_db()
    assert staff.is_active and boss.is_active
    client_for(boss).post(f"/people/{staff.pk}/deactivate/")
    staff.refresh_from_db()
    assert not staff.is_active
    assert client_for(boss).get("/people/").status_code == 200
