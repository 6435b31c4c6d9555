"""Failed sign-ins and password-reset requests, counted per person, behind nginx as in production.

Behind nginx every request comes from 127.0.0.1; the client's address is the
X-Forwarded-For entry nginx wrote (PROXY_COUNT=1).
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

PASSWORD = "correct horse battery"


@pytest.fixture
def behind_nginx(settings):
    settings.PROXY_COUNT = 1


def from_address(address, api=False):
    """A client whose requests reach Django the way nginx forwards them."""
    return (APIClient if api else Client)(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=address)


def sign_in(address, email, password):
    return from_address(address).post(reverse("login"), {"username": email, "password": password})


def get_token(address, email, password):
    return from_address(address, api=True).post("/api/auth/token/", {"username": email, "password": password})


def fail(address, email, times):
    """Wrong passwords; the last answer (the one that reached a limit is already the lockout page)."""
    for _ in range(times):
        response = sign_in(address, email, "wrong")
    return response


# The client's address


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        (1, "198.51.100.7", "198.51.100.7"),
        # A client's own X-Forwarded-For is kept left of what nginx adds; only nginx's entry counts.
        (1, "203.0.113.9, 198.51.100.7", "198.51.100.7"),
        (1, "not an address, 198.51.100.7", "198.51.100.7"),
        (1, "2001:db8::1", "2001:db8::1"),
        # Behind a load balancer and nginx, the balancer's entry is the client.
        (2, "203.0.113.9, 198.51.100.7, 192.0.2.10", "198.51.100.7"),
        # Without proxies the header is anyone's to write: the socket peer counts.
        (0, "198.51.100.7", "127.0.0.1"),
        (1, None, "127.0.0.1"),
        (2, "198.51.100.7", "127.0.0.1"),
    ],
)
def test_client_address_is_the_entry_the_proxies_wrote(settings, proxies, forwarded_for, expected):
    from corporate.auth import client_address

    settings.PROXY_COUNT = proxies
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", **headers)
    assert client_address(request) == expected


def test_failed_sign_in_is_recorded_with_the_client_address(behind_nginx, db):
    sign_in("203.0.113.9, 198.51.100.7", "alice@example.com", "wrong")
    assert list(AccessAttempt.objects.values_list("username", "ip_address")) == [("alice@example.com", "198.51.100.7")]


# Sign-in lockout


def test_one_clients_failures_do_not_lock_out_anyone_else(behind_nginx, make_user):
    make_user("bob@example.com")
    assert fail("198.51.100.1", "anyone@example.com", 4).status_code == 200
    assert fail("198.51.100.1", "anyone@example.com", 1).status_code == 429
    assert sign_in("198.51.100.2", "bob@example.com", PASSWORD).status_code == 302
    assert get_token("198.51.100.2", "bob@example.com", PASSWORD).status_code == 200


def test_an_account_is_locked_for_the_address_that_failed(behind_nginx, make_user):
    make_user("alice@example.com")
    assert fail("198.51.100.1", "alice@example.com", 4).status_code == 200
    assert sign_in("198.51.100.1", "alice@example.com", PASSWORD).status_code == 302

    fail("198.51.100.1", "alice@example.com", 5)
    locked = sign_in("198.51.100.1", "alice@example.com", PASSWORD)
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    assert get_token("198.51.100.1", "alice@example.com", PASSWORD).status_code == 429
    # Alice from her own address is not locked out.
    assert sign_in("198.51.100.2", "alice@example.com", PASSWORD).status_code == 302


def test_an_account_attacked_from_many_addresses_is_locked_everywhere(behind_nginx, settings, make_user):
    assert settings.LOGIN_ACCOUNT_FAILURE_LIMIT == 20
    make_user("alice@example.com")
    make_user("bob@example.com")
    # 19 failures, never 5 from one address: not yet.
    for i in range(19):
        sign_in(f"198.51.100.{i // 4}", "alice@example.com", "wrong")
    assert sign_in("203.0.113.1", "alice@example.com", PASSWORD).status_code == 302

    sign_in("198.51.100.200", "alice@example.com", "wrong")
    assert sign_in("203.0.113.2", "alice@example.com", PASSWORD).status_code == 429
    assert get_token("203.0.113.2", "alice@example.com", PASSWORD).status_code == 429
    # Other accounts are untouched, also from the addresses that attacked.
    assert sign_in("198.51.100.0", "bob@example.com", PASSWORD).status_code == 302


def test_an_address_trying_many_accounts_is_paused_for_all_of_them(behind_nginx, settings, make_user):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    make_user("bob@example.com")
    for i in range(7):
        sign_in("198.51.100.9", f"user{i}@example.com", "wrong")
    assert sign_in("198.51.100.9", "bob@example.com", PASSWORD).status_code == 302

    sign_in("198.51.100.9", "user7@example.com", "wrong")
    assert sign_in("198.51.100.9", "bob@example.com", PASSWORD).status_code == 429
    # Bob from his own address is not locked out.
    assert sign_in("198.51.100.10", "bob@example.com", PASSWORD).status_code == 302


def test_lockout_counts_the_account_whatever_the_letter_case(behind_nginx, make_user):
    make_user("alice@example.com")
    for email in [
        "alice@example.com",
        "Alice@example.com",
        "ALICE@example.com",
        "alice@EXAMPLE.com",
        "aLiCe@example.com",
    ]:
        sign_in("198.51.100.1", email, "wrong")
    assert sign_in("198.51.100.1", "ALICE@Example.com", PASSWORD).status_code == 429


def test_lockout_counts_the_account_whatever_spelling_the_database_folds_to_it(behind_nginx, make_user):
    """PostgreSQL's upper() takes 'ı' for 'i' and 'ſ' for 's' when it finds the account: one budget for all."""
    make_user("chris@example.com")
    for email in [
        "chrıs@example.com",
        "chriſ@example.com",
        "CHRıS@example.com",
        "chrıſ@example.com",
        "chris@example.com",
    ]:
        get_token("198.51.100.1", email, "wrong")
    assert get_token("198.51.100.1", "chris@example.com", PASSWORD).status_code == 429
    assert sign_in("198.51.100.1", "Chris@example.com", PASSWORD).status_code == 429
    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {"chris@example.com"}


def test_lockout_says_how_long_in_words(behind_nginx, settings, make_user):
    make_user("alice@example.com")
    fail("198.51.100.1", "alice@example.com", 5)
    page = sign_in("198.51.100.1", "alice@example.com", PASSWORD)
    assert "paused for 15 minutes" in page.content.decode()
    assert b"PT15M" not in page.content
    api = get_token("198.51.100.1", "alice@example.com", PASSWORD)
    assert api.status_code == 429
    assert "try again in 15 minutes" in api.json()["detail"]
    assert api["Retry-After"] == "900"

    settings.AXES_COOLOFF_TIME = timedelta(hours=1, minutes=30)
    assert "paused for 1 hour, 30 minutes" in sign_in("198.51.100.1", "alice@example.com", PASSWORD).content.decode()


# Password-reset mail


def request_reset(address, email):
    return from_address(address).post(reverse("password_reset"), {"email": email})


def test_reset_mail_for_one_account_is_limited_per_hour(behind_nginx, settings, make_user):
    assert settings.PASSWORD_RESET_ACCOUNT_LIMIT == 5
    make_user("alice@example.com")
    responses = [request_reset(f"198.51.100.{i}", "Alice@Example.com") for i in range(8)]
    assert len(mail.outbox) == 5
    assert {mail.to[0] for mail in mail.outbox} == {"alice@example.com"}
    # Every answer is the same "check your email", whether mail went or not.
    assert {(r.status_code, r["Location"]) for r in responses} == {(302, reverse("password_reset_done"))}


def test_reset_mail_limit_counts_the_account_whatever_spelling_the_database_folds_to_it(behind_nginx, settings):
    from corporate.auth import password_reset_limit

    spellings = ["iris@example.com", "ıris@example.com", "iriſ@example.com", "IRıS@example.com", "ırıſ@example.com"]
    assert len(spellings) == settings.PASSWORD_RESET_ACCOUNT_LIMIT
    for index, email in enumerate(spellings):
        request = RequestFactory().post("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{index}")
        assert password_reset_limit(request, email) is None
    request = RequestFactory().post("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert password_reset_limit(request, "Iris@example.com") == "account"


def test_limited_and_unknown_accounts_get_the_same_answer_as_a_real_one(behind_nginx, make_user):
    make_user("alice@example.com")
    for i in range(5):
        request_reset(f"198.51.100.{i}", "alice@example.com")
    limited = request_reset("198.51.100.50", "alice@example.com")
    unknown = request_reset("198.51.100.51", "ghost@example.com")
    fresh = request_reset("198.51.100.52", "bob@example.com")
    assert limited.status_code == unknown.status_code == fresh.status_code == 302
    assert limited["Location"] == unknown["Location"] == fresh["Location"]
    assert len(mail.outbox) == 5


def test_reset_requests_from_one_address_are_limited_per_hour(behind_nginx, settings, make_user):
    assert settings.PASSWORD_RESET_ADDRESS_LIMIT == 20
    settings.PASSWORD_RESET_ADDRESS_LIMIT = 3
    for i in range(4):
        make_user(f"user{i}@example.com")
    for i in range(3):
        assert request_reset("198.51.100.9", f"user{i}@example.com").status_code == 302
    refused = request_reset("198.51.100.9", "user3@example.com")
    assert refused.status_code == 429
    assert b"Try again in an hour" in refused.content
    assert len(mail.outbox) == 3
    # The limit is this address's: another one still gets its mail.
    assert request_reset("198.51.100.10", "user3@example.com").status_code == 302
    assert len(mail.outbox) == 4


def test_reset_counters_live_in_the_shared_cache(behind_nginx, settings, make_user):
    from django.core.cache import cache

    settings.PASSWORD_RESET_ACCOUNT_LIMIT = 1
    make_user("alice@example.com")
    request_reset("198.51.100.1", "alice@example.com")
    request_reset("198.51.100.1", "alice@example.com")
    assert len(mail.outbox) == 1
    # The counters are entries of Django's cache (Redis in production), not of this process.
    cache.clear()
    request_reset("198.51.100.1", "alice@example.com")
    assert len(mail.outbox) == 2
