"""A key stops working within 5 seconds of losing its rights, whatever Redis did meanwhile.

Each test runs the gateway on a redis-server of its own, which it pauses,
stops, restarts or flushes; changes are made the ways people make them
(the keys page, the REST API, the admin) and the ways that send no signal
(queryset updates, SQL).
"""

import dataclasses
import json
import time

import pytest
from django.db import connection
from django.utils import timezone

from llmgateway.auth import KeyInfo
from llmgateway.cache.entries import api_key_key
from llmgateway.cache.store import get_store
from llmgateway.models import ApiKey, hash_key
from workspaces.models import Membership

REQUEST = {"model": "offline", "messages": [{"role": "user", "content": "hello"}], "temperature": 0}
LIMIT = 5.0  # seconds from a change to the first refused request


def _status(client, full):
    response = client.post(
        "/v1/chat/completions",
        data=json.dumps(REQUEST),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {full}",
    )
    return response.status_code


def _watch(client, keys, seconds):
    """Send each key every 0.2 s for `seconds`; {name: [(seconds since start, status), ...]}.

    The last round starts after `seconds`, however long each request takes on a busy host, so every
    key has been sent at least once when its limit was over.
    """
    started = time.monotonic()
    seen = {name: [] for name in keys}
    while True:
        round_at = time.monotonic() - started
        for name, full in keys.items():
            seen[name].append((time.monotonic() - started, _status(client, full)))
        if round_at >= seconds:
            return seen
        time.sleep(0.2)


def _refused_in_time(statuses):
    """Refused from LIMIT after the change on (at the latest), and never accepted again once refused."""
    first = next((at for at, status in statuses if status == 401), None)
    late = [status for at, status in statuses if at >= LIMIT]
    return first is not None and late and all(status == 401 for at, status in statuses if at >= first)


@pytest.fixture
def creators(make_user, workspace):
    dora, remy = make_user("dora@example.com"), make_user("remy@example.com")
    for user in (dora, remy):
        Membership.objects.create(workspace=workspace, user=user, role="member")
    return dora, remy


def test_changes_that_send_no_signal_stop_a_key_within_5_seconds(client, redis_cache, workspace, admin_user, creators):
    dora, remy = creators
    keys = {
        "revoked": ApiKey.create(workspace, "revoked", admin_user),
        "expired": ApiKey.create(workspace, "expired", admin_user),
        "creator deactivated": ApiKey.create(workspace, "dora's", dora),
        "creator removed": ApiKey.create(workspace, "remy's", remy),
        "untouched": ApiKey.create(workspace, "untouched", admin_user),
    }
    texts = {name: full for name, (_, full) in keys.items()}
    assert {name: _status(client, full) for name, full in texts.items()} == dict.fromkeys(texts, 200)  # now cached

    # As a script, a data fix or another program would do it: no model signals.
    ApiKey.objects.filter(pk=keys["revoked"][0].pk).update(revoked_at=timezone.now())
    ApiKey.objects.filter(pk=keys["expired"][0].pk).update(expires_at=timezone.now())
    type(dora).objects.filter(pk=dora.pk).update(is_active=False)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workspaces_membership WHERE user_id = %s", [remy.pk])

    seen = _watch(client, texts, LIMIT + 0.6)
    for name in ("revoked", "expired", "creator deactivated", "creator removed"):
        assert _refused_in_time(seen[name]), (name, [s for s in seen[name] if s[0] > 4])
    assert {status for _, status in seen["untouched"]} == {200}


def test_a_key_revoked_while_redis_is_paused(client, client_for, redis_cache, workspace, admin_user, settings):
    settings.REDIS_RETRY_SECONDS = 1
    page_key, page_text = ApiKey.create(workspace, "revoked on the page", admin_user)
    api_key, api_text = ApiKey.create(workspace, "revoked through the API", admin_user)
    kept, kept_text = ApiKey.create(workspace, "kept", admin_user)
    admin = client_for(admin_user)
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=admin_user)[0].key}")
    for full in (page_text, api_text, kept_text):
        assert _status(client, full) == 200  # cached in Redis

    redis_cache.pause()
    try:
        response = admin.post(f"/gateway/{workspace.slug}/keys/{page_key.pk}/revoke/", follow=True)
        assert response.status_code == 200
        shown = [str(m) for m in response.context["messages"]]
        # The page promises only what holds whatever Redis does.
        assert shown == [f"The key “{page_key.name}” is revoked; requests with it are refused within 5 seconds."]
        assert api.delete(f"/api/gateway/{workspace.slug}/keys/{api_key.pk}/").status_code == 204
    finally:
        redis_cache.resume()

    # Redis still holds both records from before the pause; they must not bring the keys back.
    seen = _watch(client, {"page": page_text, "api": api_text, "kept": kept_text}, LIMIT + 0.6)
    assert _refused_in_time(seen["page"]), seen["page"]
    assert _refused_in_time(seen["api"]), seen["api"]
    assert {status for _, status in seen["kept"]} == {200}


def test_a_key_revoked_while_redis_is_down_fails_after_restart_and_flush(
    client, redis_cache, workspace, admin_user, settings
):
    settings.REDIS_RETRY_SECONDS = 1
    key, full = ApiKey.create(workspace, "k", admin_user)
    other, other_text = ApiKey.create(workspace, "other", admin_user)
    assert _status(client, full) == _status(client, other_text) == 200

    redis_cache.stop()
    key.revoke()
    assert _status(client, full) == 401  # from the database while Redis is away
    assert _status(client, other_text) == 200
    redis_cache.start().used_again()
    assert _status(client, full) == 401
    assert _status(client, other_text) == 200

    ApiKey.objects.filter(pk=other.pk).update(revoked_at=timezone.now())
    redis_cache.flushall()
    assert _status(client, other_text) == 401


def test_a_hit_rechecks_its_key_once_per_5_seconds(v1, api_key, django_assert_num_queries):
    _, full = api_key
    assert v1(REQUEST).status_code == 200  # the key is read and cached
    with django_assert_num_queries(0):
        assert v1(REQUEST)["X-Cache"] == "HIT"
    # The same record as read from the database 6 seconds ago.
    store, key = get_store(), api_key_key(hash_key(full))
    info = KeyInfo.loads(store.get_many([key])[0])
    store.set(key, dataclasses.replace(info, checked_at=time.time() - 6).dumps(), 60)
    # One query: the key, unrevoked, its creator active and still a member.
    with django_assert_num_queries(1):
        assert v1(REQUEST)["X-Cache"] == "HIT"
    with django_assert_num_queries(0):
        assert v1(REQUEST)["X-Cache"] == "HIT"


def test_a_record_nearly_due_is_read_again_once_after_the_response(v1, api_key, django_assert_num_queries):
    # Requests that arrive together when a busy key's record falls due would each query the database;
    # in its last second the record is read again by the first request (after its response), not by all.
    _, full = api_key
    assert v1(REQUEST).status_code == 200
    store, key = get_store(), api_key_key(hash_key(full))
    info = KeyInfo.loads(store.get_many([key])[0])
    store.set(key, dataclasses.replace(info, checked_at=time.time() - 4.5).dumps(), 60)
    with django_assert_num_queries(1):
        assert v1(REQUEST)["X-Cache"] == "HIT"
    renewed = KeyInfo.loads(store.get_many([key])[0])
    assert time.time() - renewed.checked_at < 1
    with django_assert_num_queries(0):
        assert v1(REQUEST)["X-Cache"] == "HIT"
        assert v1(REQUEST)["X-Cache"] == "HIT"
