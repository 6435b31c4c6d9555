import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

PASSWORD = "correct horse battery"


@pytest.fixture
def alice(make_user):
    return make_user("alice@example.com", full_name="Alice Example")


def sign_in(client, email, password):
    return client.post(reverse("login"), {"username": email, "password": password})


def test_dashboard_requires_sign_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_sign_in_reaches_dashboard(client, alice):
    response = sign_in(client, "Alice@Example.com", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    page = client.get(reverse("dashboard"))
    assert page.status_code == 200
    assert b"Welcome, Alice Example" in page.content
    assert b"Sign out" in page.content


def test_wrong_password_and_unknown_email_show_the_same_message(client, alice):
    for email, password in [("alice@example.com", "wrong"), ("nobody@example.com", PASSWORD)]:
        response = sign_in(client, email, password)
        assert response.status_code == 200
        assert b"do not match an account" in response.content
    assert "_auth_user_id" not in client.session


def test_sign_out_needs_post_and_ends_session(client, alice):
    client.force_login(alice)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_password_change(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "a fresh long secret", "new_password2": "a fresh long secret"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a fresh long secret")


def test_password_change_wrong_old_password_is_a_field_error(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "a fresh long secret", "new_password2": "a fresh long secret"},
    )
    assert response.status_code == 200
    assert b"Your old password was entered incorrectly" in response.content


def test_password_reset_by_email(client, alice):
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/accounts/reset/\S+/", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert b"Choose a new password" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "a new long secret", "new_password2": "a new long secret"}
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a new long secret")


def test_a_password_reset_link_goes_to_site_url_whatever_host_the_request_named(client, alice, settings):
    settings.SITE_URL = "https://ai.example.com"
    settings.ALLOWED_HOSTS = ["testserver", "attacker.example.com"]  # a wide ALLOWED_HOSTS behind a proxy
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"}, HTTP_HOST="attacker.example.com")
    assert response.status_code == 302
    assert "https://ai.example.com/accounts/reset/" in mail.outbox[0].body
    assert "attacker.example.com" not in mail.outbox[0].body


def test_password_reset_for_unknown_email_sends_nothing(client, db):
    response = client.post(reverse("password_reset"), {"email": "ghost@example.com"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_bad_reset_token_is_a_clear_page(client, alice):
    response = client.get("/accounts/reset/MQ/bad-token/", follow=True)
    assert response.status_code == 200
    assert b"invalid or has expired" in response.content


def test_tampered_session_cookie_is_just_signed_out(client, alice):
    client.cookies["sessionid"] = "tampered-value"
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302


def test_missing_csrf_token_is_a_styled_403(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert b"This form has expired" in response.content
    assert b"site-header" in response.content


def test_unknown_page_is_a_styled_404(client, alice):
    client.force_login(alice)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content


def test_deactivated_user_loses_session_and_token(client, alice):
    client.force_login(alice)
    token = Token.objects.create(user=alice)
    assert client.get(reverse("dashboard")).status_code == 200
    alice.is_active = False
    alice.save()
    assert client.get(reverse("dashboard")).status_code == 302
    assert not Token.objects.filter(key=token.key).exists()


def test_deactivation_refuses_session_even_when_saved_without_signal(client, alice):
    client.force_login(alice)
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert client.get(reverse("dashboard")).status_code == 302


def test_sessions_are_stored_in_the_database(client, alice):
    from django.contrib.sessions.models import Session

    client.force_login(alice)
    assert Session.objects.filter(session_key=client.session.session_key).exists()


def test_create_user_command(db, monkeypatch):
    monkeypatch.setenv("CORPORATE_PASSWORD", "a long enough secret")
    call_command("create_user", "New.Person@Example.com", "--staff")
    user = get_user_model().objects.get(email="new.person@example.com")
    assert user.is_staff and user.check_password("a long enough secret")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", "new.person@example.com")


def test_create_user_refuses_weak_password(db, monkeypatch):
    monkeypatch.setenv("CORPORATE_PASSWORD", "123")
    with pytest.raises(CommandError, match="Password refused"):
        call_command("create_user", "weak@example.com")
    assert not get_user_model().objects.filter(email="weak@example.com").exists()


def test_admin_user_list_is_searchable(client, db, make_user):
    staff = make_user("root@example.com", is_staff=True, is_superuser=True)
    make_user("findme@example.com")
    client.force_login(staff)
    response = client.get("/admin/corporate/user/?q=findme&is_active__exact=1")
    assert response.status_code == 200
    assert b"findme@example.com" in response.content
    assert b"root@example.com" not in response.content.split(b"result_list")[1]


def test_seed_demo_runs_twice_without_duplicates(db, capsys, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    first = capsys.readouterr().out
    assert "admin@example.com" in first
    users = get_user_model().objects.count()
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert "nothing added" in second
    assert get_user_model().objects.count() == users
    assert "admin@example.com" in (tmp_path / "demo_credentials.txt").read_text()


def test_nul_in_the_query_string_is_a_400(client, make_user):
    client.force_login(make_user("nul@example.com"))
    page = client.get("/documents/?q=vacation%00")
    assert page.status_code == 400
    assert b"NUL character" in page.content
    api = client.get("/api/workspaces/?workspace=a%00")
    assert api.status_code == 400
    assert "NUL" in api.json()["detail"]


def test_bad_host_header_is_a_400_page(client, db):
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert b"Bad request" in response.content


def test_signed_in_user_with_next_pointing_at_sign_in_goes_to_dashboard(client, alice):
    client.force_login(alice)
    response = client.get("/accounts/login/?next=/accounts/login/")
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")


def test_reactivated_user_does_not_get_old_sessions_back(client, alice):
    client.force_login(alice)
    alice.is_active = False
    alice.save()
    alice.is_active = True
    alice.save()
    assert client.get(reverse("dashboard")).status_code == 302


def test_unknown_api_paths_answer_json(client, db):
    assert client.get("/api/no-such-thing/").json() == {"detail": "Not found."}
    assert client.get("/v1/no-such-thing").json()["error"]["code"] == "not_found"
    assert b"Page not found" in client.get("/no-such-page/").content


NEW_PASSWORD = "a brand new long secret"


def token_works(key):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/workspaces/").status_code == 200


def test_a_new_password_on_the_page_ends_tokens_and_other_sessions_but_not_this_one(client, alice):
    token = client.post("/api/auth/token/", {"username": "alice@example.com", "password": PASSWORD}).json()["token"]
    elsewhere = Client()
    sign_in(elsewhere, "alice@example.com", PASSWORD)
    sign_in(client, "alice@example.com", PASSWORD)
    assert token_works(token) and elsewhere.get(reverse("dashboard")).status_code == 200
    changed = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert not token_works(token) and not Token.objects.filter(user=alice).exists()
    assert elsewhere.get(reverse("dashboard")).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200  # the session it was changed in goes on
    # A new token needs the new password.
    assert client.post("/api/auth/token/", {"username": "alice@example.com", "password": NEW_PASSWORD}).json()["token"]


def test_a_password_reset_ends_the_tokens(client, alice):
    token = Token.objects.create(user=alice)
    client.post(reverse("password_reset"), {"email": "alice@example.com"})
    path = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(path, follow=True)
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert not token_works(token.key)


def test_a_password_set_in_the_admin_ends_the_tokens(client, alice, django_user_model):
    boss = django_user_model.objects.create_superuser(email="boss@example.com", password=PASSWORD)
    token = Token.objects.create(user=alice)
    client.force_login(boss)
    url = f"/admin/corporate/user/{alice.pk}/password/"
    response = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert response.status_code == 302
    assert not token_works(token.key)
    assert Token.objects.filter(user=boss).count() == 0 and client.get("/admin/").status_code == 200


def test_set_password_and_the_changepassword_command_end_the_tokens(alice, monkeypatch):
    token = Token.objects.create(user=alice)
    alice.set_password(NEW_PASSWORD)
    alice.save()
    assert not token_works(token.key)

    token = Token.objects.create(user=alice)
    from django.contrib.auth.management.commands import changepassword

    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": "yet another long secret")
    call_command("changepassword", "alice@example.com")
    assert not token_works(token.key)


def test_other_saves_and_a_hash_upgraded_at_sign_in_keep_the_tokens(client, alice, settings):
    from django.contrib.auth.hashers import make_password

    token = Token.objects.create(user=alice)
    alice.full_name = "Alice Renamed"
    alice.save()
    # An older hasher's hash is upgraded when the password is next checked: the same password, kept tokens.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ]
    old_hash = make_password(PASSWORD, hasher="pbkdf2_sha1")
    get_user_model().objects.filter(pk=alice.pk).update(password=old_hash)
    answer = client.post("/api/auth/token/", {"username": "alice@example.com", "password": PASSWORD})
    assert answer.json()["token"] == token.key
    alice.refresh_from_db()
    assert alice.password != old_hash and alice.password.startswith("md5$")
    assert token_works(token.key)


def test_a_password_turned_off_ends_the_tokens(alice):
    # OIDC_DISABLE_LOCAL_PASSWORDS at an SSO sign-in, or "password-based authentication: disabled" in the admin.
    token = Token.objects.create(user=alice)
    alice.set_unusable_password()
    alice.save(update_fields=["full_name"])  # the password is not written: still usable, the token stays
    assert token_works(token.key)
    alice.save(update_fields=["password"])
    assert not token_works(token.key)
    # Without a usable password, other saves keep a token made since (staff may give one in the admin).
    token = Token.objects.create(user=alice)
    alice.full_name = "Alice Renamed"
    alice.save()
    alice.set_unusable_password()
    alice.save()
    assert token_works(token.key)
