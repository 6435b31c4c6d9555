"""Two-factor sign-in for local accounts: enrolment, the second step, its lockout, the policy, and the APIs."""

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from twofactor import flow, policy

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def code_for(device, offset=0):
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


def enrol(user):
    device = TOTPDevice.objects.create(user=user, name=policy.TOTP_NAME, confirmed=True)
    return device, policy.new_recovery_codes(user)


def password_step(client, email, next_url=None):
    data = {"username": email, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/login/", data)


def signed_in(client):
    return client.session.get("_auth_user_id") is not None


def test_enrolment_with_a_qr_code_then_the_code_is_needed_at_the_next_sign_in(client, make_user):
    user = make_user("jane@example.com")
    client.force_login(user)
    page = client.get("/accounts/2fa/setup/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body and "<script" not in body.split("<main", 1)[1]
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert re.sub(r"\s", "", re.search(r'class="secret-key">([^<]+)<', body).group(1))

    wrong = client.post("/accounts/2fa/setup/", {"code": "000000" if code_for(device) != "000000" else "111111"})
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    done = client.post("/accounts/2fa/setup/", {"code": code_for(device)})
    assert done.status_code == 200
    codes = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", done.content.decode())
    assert len(codes) == 10
    device.refresh_from_db()
    assert device.confirmed and policy.is_enrolled(user)
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="user.mfa_enable", actor_id=user.pk).count() == 1

    client.post("/accounts/logout/")
    step_one = password_step(client, "jane@example.com", next_url="/workspaces/")
    assert step_one.status_code == 302 and step_one["Location"] == "/accounts/2fa/verify/"
    assert not signed_in(client)
    assert client.get("/").status_code == 302  # nobody is signed in between the steps
    verify_page = client.get("/accounts/2fa/verify/")
    assert "One more step" in verify_page.content.decode()
    device.last_t = -1  # a new time step: the code used at enrolment may not be used again
    device.save()
    step_two = client.post("/accounts/2fa/verify/", {"code": code_for(device, offset=1)})
    assert step_two.status_code == 302 and step_two["Location"] == "/workspaces/"
    assert signed_in(client)
    assert client.get("/").status_code == 200


def test_a_totp_code_is_used_once(client, make_user):
    user = make_user("jane@example.com")
    device, _ = enrol(user)
    code = code_for(device)
    password_step(client, "jane@example.com")
    assert client.post("/accounts/2fa/verify/", {"code": code}).status_code == 302
    client.post("/accounts/logout/")
    password_step(client, "jane@example.com")
    assert client.post("/accounts/2fa/verify/", {"code": code}).status_code == 400
    assert not signed_in(client)


def test_a_recovery_code_works_once(client, make_user):
    user = make_user("jane@example.com")
    _, codes = enrol(user)
    password_step(client, "jane@example.com")
    assert client.post("/accounts/2fa/verify/", {"code": codes[0].upper()}).status_code == 302
    assert policy.remaining_recovery_codes(user) == 9
    client.post("/accounts/logout/")
    password_step(client, "jane@example.com")
    assert client.post("/accounts/2fa/verify/", {"code": codes[0]}).status_code == 400


def test_wrong_codes_are_locked_out_like_passwords(client, make_user, settings):
    user = make_user("jane@example.com")
    device, _ = enrol(user)
    password_step(client, "jane@example.com")
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert client.post("/accounts/2fa/verify/", {"code": "123456"}).status_code == 400
    locked = client.post("/accounts/2fa/verify/", {"code": "123456"})
    assert locked.status_code == 429 and "minutes" in locked.content.decode()
    # The right code no longer helps while the pause lasts, nor does the password.
    assert client.post("/accounts/2fa/verify/", {"code": code_for(device)}).status_code == 429
    assert password_step(client, "jane@example.com").status_code == 429
    assert not signed_in(client)


def test_the_second_step_expires(client, make_user, settings):
    user = make_user("jane@example.com")
    device, _ = enrol(user)
    password_step(client, "jane@example.com")
    session = client.session
    session[flow.PENDING] = {**session[flow.PENDING], "at": int(time.time()) - settings.TWO_FACTOR_STEP_SECONDS - 1}
    session.save()
    response = client.post("/accounts/2fa/verify/", {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not signed_in(client)


def test_verify_without_a_password_step_goes_to_sign_in(client):
    assert client.get("/accounts/2fa/verify/")["Location"] == "/accounts/login/"


def test_policy_for_everyone_sends_a_new_sign_in_to_enrolment(client, make_user, api_client_for):
    user = make_user("jane@example.com")
    call_command("require_2fa")
    response = password_step(client, "jane@example.com", next_url="/workspaces/")
    assert response.status_code == 302 and signed_in(client)
    page = client.get("/workspaces/")
    assert page.status_code == 302 and page["Location"] == "/accounts/2fa/setup/?next=%2Fworkspaces%2F"
    # A page address with its own query string comes back whole.
    query = client.get("/workspaces/?q=a&sort=name")
    assert parse_qs(urlsplit(query["Location"]).query)["next"] == ["/workspaces/?q=a&sort=name"]
    assert client.get("/api/workspaces/").status_code == 403
    setup = client.get(page["Location"])
    assert "requires a second factor" in setup.content.decode()
    # An API token needs no session: unaffected.
    assert api_client_for(user).get("/api/workspaces/").status_code == 200
    device = TOTPDevice.objects.get(user=user)
    client.post("/accounts/2fa/setup/", {"code": code_for(device), "next": "/workspaces/"})
    assert client.get("/workspaces/").status_code == 200


def test_policy_for_staff_only(client, make_user):
    make_user("jane@example.com")
    make_user("boss@example.com", is_staff=True)
    call_command("require_2fa", "--staff-only")
    password_step(client, "jane@example.com")
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    password_step(client, "boss@example.com")
    assert client.get("/").status_code == 302


def test_environment_sets_a_floor(make_user, settings):
    boss = make_user("boss@example.com", is_staff=True)
    jane = make_user("jane@example.com")
    settings.TWO_FACTOR_REQUIRED = "staff"
    call_command("require_2fa", "--off")
    assert policy.is_required(boss) and not policy.is_required(jane)
    call_command("require_2fa")
    assert policy.is_required(jane)


def test_api_tokens_and_workspace_keys_are_unaffected(client, make_user, api_client_for, workspace, admin_user):
    from llmgateway.models import ApiKey

    call_command("require_2fa")
    enrol(admin_user)
    # An existing token keeps working; so does a workspace API key.
    assert api_client_for(admin_user).get("/api/workspaces/").status_code == 200
    _, key = ApiKey.create(workspace, "script", admin_user)
    assert client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_a_new_api_token_needs_the_code_when_enrolled(client, make_user):
    user = make_user("jane@example.com")
    device, _ = enrol(user)
    account = {"username": "jane@example.com", "password": PASSWORD}
    refused = client.post("/api/auth/token/", account)
    assert refused.status_code == 400 and "otp_code" in refused.json()
    assert client.post("/api/auth/token/", {**account, "otp_code": "000001"}).status_code == 400
    granted = client.post("/api/auth/token/", {**account, "otp_code": code_for(device)})
    assert granted.status_code == 200 and granted.json()["token"]


@pytest.mark.parametrize("required", ["all", "staff"])
def test_an_account_that_must_enrol_gets_no_new_api_token_until_it_has(client, make_user, required):
    from rest_framework.authtoken.models import Token

    boss = make_user("boss@example.com", is_staff=True)
    make_user("jane@example.com")
    call_command("require_2fa", *(["--staff-only"] if required == "staff" else []))
    account = {"username": "boss@example.com", "password": PASSWORD}
    refused = client.post("/api/auth/token/", account)
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "This account must use two-factor sign-in: sign in on the site and set it up first (/accounts/2fa/), "
        "then ask for a token with otp_code."
    )
    assert not Token.objects.filter(user=boss).exists()
    # A wrong password still reads as before: nothing said about the account.
    assert client.post("/api/auth/token/", {**account, "password": "wrong"}).status_code == 400
    # Whom the policy leaves out still gets one; once enrolled, the code gets one.
    answer = client.post("/api/auth/token/", {"username": "jane@example.com", "password": PASSWORD})
    assert answer.status_code == (403 if required == "all" else 200)
    device, _ = enrol(boss)
    granted = client.post("/api/auth/token/", {**account, "otp_code": code_for(device)})
    assert granted.status_code == 200 and Token.objects.filter(user=boss).exists()


def test_turning_off_and_new_recovery_codes_need_a_current_code(client, make_user):
    user = make_user("jane@example.com")
    device, codes = enrol(user)
    client.force_login(user)
    client.post("/accounts/2fa/disable/", {"code": "000000"})
    assert policy.is_enrolled(user)
    renewed = client.post("/accounts/2fa/recovery-codes/", {"code": codes[0]})
    assert renewed.status_code == 200 and codes[1] not in renewed.content.decode()
    assert policy.verify(user, codes[1]) is None  # the old codes stopped working
    client.post("/accounts/2fa/disable/", {"code": code_for(device)})
    assert not policy.is_enrolled(user)


def test_required_cannot_be_turned_off(client, make_user):
    user = make_user("jane@example.com")
    device, _ = enrol(user)
    call_command("require_2fa")
    client.force_login(user)
    client.post("/accounts/2fa/disable/", {"code": code_for(device)})
    assert policy.is_enrolled(user)


def test_admin_sign_in_goes_through_the_site_sign_in(client):
    response = client.get("/admin/login/?next=/admin/corporate/user/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2Fcorporate%2Fuser%2F"


def test_admin_for_a_signed_in_non_staff_user_is_a_403_not_a_loop(client, make_user):
    client.force_login(make_user("jane@example.com"))
    assert client.get("/admin/", follow=True).status_code == 403


def test_overview_page(client, make_user):
    user = make_user("jane@example.com")
    client.force_login(user)
    assert "Off." in client.get("/accounts/2fa/").content.decode()
    enrol(user)
    assert "10 recovery codes left" in client.get("/accounts/2fa/").content.decode()


def test_overview_and_verify_page_queries(client, make_user, django_assert_num_queries):
    user = make_user("jane@example.com")
    enrol(user)
    password_step(client, "jane@example.com")
    # 1 the waiting account (the session comes from the cache)
    with django_assert_num_queries(1):
        assert client.get("/accounts/2fa/verify/").status_code == 200
    client.force_login(user)
    # 1 the user (the session comes from the cache), 2 enrolled?, 3 the policy, 4 recovery codes left
    with django_assert_num_queries(4):
        assert client.get("/accounts/2fa/").status_code == 200


@pytest.mark.parametrize("next_url", ["-1", "workspaces"])
def test_second_step_with_a_next_that_is_no_path(client, make_user, next_url):
    user = make_user("jane@example.com", password=PASSWORD)
    device, _ = enrol(user)
    assert password_step(client, "jane@example.com", next_url=next_url)["Location"] == "/accounts/2fa/verify/"
    response = client.post("/accounts/2fa/verify/", {"code": code_for(device)})
    assert response.status_code == 302
    assert signed_in(client)
