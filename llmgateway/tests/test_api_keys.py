"""API keys: bearer auth on /v1 and /api, revocation and expiry through the cache, pages and command."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from llmgateway.models import ApiKey, hash_key
from workspaces.models import Membership

REQUEST = {"model": "offline", "messages": [{"role": "user", "content": "hello"}]}


def _post(client, key, body=REQUEST):
    return client.post(
        "/v1/chat/completions", data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=key
    )


def test_only_prefix_and_hash_are_stored(api_key):
    key, full = api_key
    assert full.startswith("gw_" + key.prefix + "_")
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert full not in json.dumps(row, default=str)
    assert row["key_hash"] == hash_key(full)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        'Bearer "gw_12345678_abc"',
        "Bearer ' OR 1=1 --",
        "Bearer gw_12345678_" + "a" * 43 + "'; DROP TABLE llmgateway_apikey; --",
        "Bearer " + "x" * 10_000,
        "Bearer gw_00000000_" + "A" * 43,  # well-formed, unknown
        "Bearer \x00\x01\x02",
    ],
)
def test_bad_bearer_tokens_are_401(client, workspace, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.post("/v1/chat/completions", data=json.dumps(REQUEST), content_type="application/json", **extra)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/v1/models", **extra).status_code == 401


def test_a_key_works_and_its_requests_land_in_its_workspace(client, api_key, workspace):
    response = _post(client, f"Bearer {api_key[1]}")
    assert response.status_code == 200
    from llmgateway.cache import stats

    assert stats.summary(workspace.pk)["requests"] == 1


def test_revoked_key_fails_on_the_next_request_though_cached(client, api_key):
    key, full = api_key
    assert _post(client, f"Bearer {full}").status_code == 200  # now cached
    key.revoke()
    assert _post(client, f"Bearer {full}").status_code == 401


def test_expired_key_fails(client, api_key):
    key, full = api_key
    key.expires_at = timezone.now() + timedelta(seconds=3)  # time enough for the first request on a busy host
    key.save()
    assert _post(client, f"Bearer {full}").status_code == 200
    # Expiry is checked against the cached info too, not only on a cache miss.
    import time

    time.sleep(max(0.0, (key.expires_at - timezone.now()).total_seconds()) + 0.1)
    response = _post(client, f"Bearer {full}")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_deactivated_creator_fails_on_the_next_request(client, api_key, admin_user):
    _, full = api_key
    assert _post(client, f"Bearer {full}").status_code == 200
    admin_user.is_active = False
    admin_user.save()
    assert _post(client, f"Bearer {full}").status_code == 401


def test_reactivating_the_creator_does_not_revive_the_keys_deactivation_revoked(
    client, api_key, admin_user, workspace, make_user, client_for
):
    from audit.models import AuditEvent

    key, full = api_key
    earlier, _ = ApiKey.create(workspace, "old", admin_user)
    earlier.revoke()
    revoked_before = ApiKey.objects.get(pk=earlier.pk).revoked_at
    others, others_full = ApiKey.create(workspace, "someone else's", make_user("other@example.com"))
    Membership.objects.create(workspace=workspace, user=others.created_by, role="member")
    staff = make_user("staff@example.com", is_staff=True)
    assert client_for(staff).post(f"/people/{admin_user.pk}/deactivate/").status_code == 302
    assert client_for(staff).post(f"/people/{admin_user.pk}/reactivate/").status_code == 302
    assert _post(client, f"Bearer {full}").status_code == 401
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert ApiKey.objects.get(pk=earlier.pk).revoked_at == revoked_before  # a revoked key keeps its date
    assert _post(client, f"Bearer {others_full}").status_code == 200
    revoked = AuditEvent.objects.get(action="api_key.revoke", object_id=str(key.pk))
    assert revoked.actor_email == "staff@example.com"


def test_creator_removed_from_the_workspace_fails_on_the_next_request(client, api_key, admin_user, workspace):
    _, full = api_key
    assert _post(client, f"Bearer {full}").status_code == 200
    Membership.objects.filter(workspace=workspace, user=admin_user).delete()
    assert _post(client, f"Bearer {full}").status_code == 401


def test_key_without_the_completions_scope(client, workspace, admin_user):
    _, full = ApiKey.create(workspace, "reader", admin_user, scopes=["read"])
    response = _post(client, f"Bearer {full}")
    assert response.status_code == 401
    assert "scope" in response.json()["error"]["message"]


def test_archived_workspace_refuses_completions(client, api_key, workspace):
    workspace.archived = True
    workspace.save()
    assert _post(client, f"Bearer {api_key[1]}").status_code == 403


def test_archived_workspace_refuses_embeddings(client, api_key, workspace):
    key = f"Bearer {api_key[1]}"
    body = json.dumps({"input": "hello"})
    assert (
        client.post("/v1/embeddings", body, content_type="application/json", HTTP_AUTHORIZATION=key).status_code == 200
    )
    workspace.archived = True
    workspace.save()
    refused = client.post("/v1/embeddings", body, content_type="application/json", HTTP_AUTHORIZATION=key)
    assert refused.status_code == 403
    assert "archived" in refused.json()["error"]["message"]


def test_models_endpoint(client, api_key, remote_model):
    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    assert response.status_code == 200
    ids = [m["id"] for m in response.json()["data"]]
    assert "remote" in ids and "offline" in ids
    assert "sk-upstream" not in response.content.decode()


class TestRestApi:
    def _client(self, full):
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
        return client

    def test_key_authenticates_the_rest_api_limited_to_its_workspace(self, workspace, other_workspace, owner):
        Membership.objects.create(workspace=other_workspace, user=owner, role="owner")
        _, full = ApiKey.create(workspace, "api", owner, scopes=["read"])
        client = self._client(full)
        assert client.get(f"/api/gateway/{workspace.slug}/keys/").status_code == 200
        # The creator owns the other workspace too, but the key reaches only its own.
        assert client.get(f"/api/gateway/{other_workspace.slug}/keys/").status_code == 404

    def test_write_needs_the_write_scope(self, workspace, owner):
        _, reader = ApiKey.create(workspace, "reader", owner, scopes=["read"])
        _, writer = ApiKey.create(workspace, "writer", owner, scopes=["read", "write"])
        url = f"/api/gateway/{workspace.slug}/keys/"
        assert self._client(reader).post(url, {"name": "x"}, format="json").status_code in (401, 403)
        # Even a write key cannot mint keys: it would outlive its own expiry.
        minted = self._client(writer).post(url, {"name": "x"}, format="json")
        assert minted.status_code == 403
        assert "not with an API key" in minted.json()["detail"]
        assert not ApiKey.objects.filter(name="x").exists()

    def test_a_write_key_cannot_change_who_has_access(self, workspace, owner, viewer, api_client_for):
        from workspaces.models import Invitation

        _, writer = ApiKey.create(workspace, "writer", owner, scopes=["read", "write"])
        client = self._client(writer)
        base = f"/api/workspaces/{workspace.slug}"
        invited = client.post(f"{base}/invitations/", {"email": "new@evil.example", "role": "admin"}, format="json")
        assert invited.status_code == 403, invited.content
        assert "API key" in invited.json()["detail"]
        membership = Membership.objects.get(workspace=workspace, user=viewer)
        promoted = client.patch(f"{base}/members/{membership.pk}/", {"role": "owner"}, format="json")
        assert promoted.status_code == 403
        assert client.delete(f"{base}/members/{membership.pk}/").status_code == 403
        assert client.delete(f"{base}/").status_code == 403
        assert not Invitation.objects.exists()
        membership.refresh_from_db()
        assert membership.role == "viewer"
        # The key still reads and writes what the owner may, and the owner's own token still invites.
        assert client.get(f"{base}/members/").status_code == 200
        assert client.patch(f"{base}/", {"description": "Changed with a key"}, format="json").status_code == 200
        by_person = api_client_for(owner).post(f"{base}/invitations/", {"email": "new@acme.example"}, format="json")
        assert by_person.status_code == 201

    def test_a_write_key_cannot_join_leave_or_create_workspaces_nor_revoke_keys(
        self, workspace, other_workspace, outsider, owner
    ):
        from workspaces import services
        from workspaces.models import Workspace

        invitation = services.invite(outsider, other_workspace, owner.email)
        key, writer = ApiKey.create(workspace, "writer", owner, scopes=["read", "write"])
        other, _ = ApiKey.create(workspace, "other", owner, scopes=["read"])
        client = self._client(writer)
        refused = [
            client.post("/api/invitations/accept/", {"token": invitation.token}, format="json"),
            client.post(f"/api/workspaces/{workspace.slug}/leave/"),
            client.post("/api/workspaces/", {"name": "By a key", "slug": "by-a-key"}, format="json"),
            client.delete(f"/api/gateway/{workspace.slug}/keys/{other.pk}/"),
            client.delete(f"/api/gateway/{workspace.slug}/keys/{key.pk}/"),
        ]
        assert [r.status_code for r in refused] == [403] * 5
        assert all("An API key cannot" in r.json()["detail"] for r in refused)
        assert not Membership.objects.filter(workspace=other_workspace, user=owner).exists()
        assert Membership.objects.filter(workspace=workspace, user=owner).exists()
        assert not Workspace.objects.filter(slug="by-a-key").exists()
        assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()
        # The key still reads its workspace's keys.
        assert client.get(f"/api/gateway/{workspace.slug}/keys/{other.pk}/").status_code == 200

    def test_a_write_key_cannot_lift_its_own_limits(self, workspace, admin_user, api_client_for):
        from llmgateway.models import Limit

        key, writer = ApiKey.create(workspace, "ci", admin_user, scopes=["completions", "read", "write"])
        Limit.objects.create(kind="key", workspace=workspace, api_key=key, daily_budget=5)
        Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=50)
        client = self._client(writer)
        own = f"/api/gateway/{workspace.slug}/limits/keys/{key.pk}/"
        assert client.get(own).json()["daily_budget"] == "5.0000"
        for method, path in [
            ("delete", own),
            ("patch", own),
            ("put", own),
            ("delete", f"/api/gateway/{workspace.slug}/limits/workspace/"),
            ("patch", f"/api/gateway/{workspace.slug}/limits/workspace/"),
        ]:
            response = getattr(client, method)(path, {"daily_budget": None}, format="json")
            assert response.status_code == 403, (method, path, response.content)
        assert Limit.objects.get(api_key=key).daily_budget == 5
        assert Limit.objects.get(kind="workspace").daily_budget == 50
        # The admin, signed in or with a user token, still changes them.
        assert api_client_for(admin_user).patch(own, {"daily_budget": "7"}, format="json").status_code == 200

    def test_a_write_key_cannot_restore_its_archived_workspace(self, workspace, owner):
        _, writer = ApiKey.create(workspace, "ci", owner, scopes=["completions", "read", "write"])
        workspace.archived = True
        workspace.save()
        response = self._client(writer).patch(f"/api/workspaces/{workspace.slug}/", {"archived": False}, format="json")
        assert response.status_code == 403
        workspace.refresh_from_db()
        assert workspace.archived
        assert _post(self._client(writer), f"Bearer {writer}").status_code == 403  # completions stay off

    def test_bad_bearer_token_on_the_rest_api(self, workspace):
        response = self._client("' OR 1=1 --").get(f"/api/gateway/{workspace.slug}/keys/")
        assert response.status_code in (401, 403)

    def test_create_list_and_revoke(self, api_client_for, admin_user, workspace):
        client = api_client_for(admin_user)
        url = f"/api/gateway/{workspace.slug}/keys/"
        created = client.post(url, {"name": "ci", "scopes": ["completions", "read"]}, format="json")
        assert created.status_code == 201
        full = created.json()["key"]
        listed = client.get(url).json()
        assert [k["name"] for k in listed] == ["ci"]
        assert full not in json.dumps(listed)
        assert client.delete(f"{url}{created.json()['id']}/").status_code == 204
        assert client.get(f"{url}{created.json()['id']}/").json()["state"] == "revoked"

    def test_bad_input_names_the_field(self, api_client_for, admin_user, workspace):
        client = api_client_for(admin_user)
        response = client.post(f"/api/gateway/{workspace.slug}/keys/", {"name": "x", "scopes": ["root"]}, format="json")
        assert response.status_code == 400 and "scopes" in response.json()
        past = (timezone.now() - timedelta(days=1)).isoformat()
        response = client.post(f"/api/gateway/{workspace.slug}/keys/", {"name": "x", "expires_at": past}, format="json")
        assert response.status_code == 400 and "expires_at" in response.json()


class TestPages:
    def test_create_shows_the_key_once(self, client_for, admin_user, workspace):
        client = client_for(admin_user)
        url = f"/gateway/{workspace.slug}/keys/"
        response = client.post(url, {"name": "Support bot", "scopes": ["completions"]})
        assert response.status_code == 201
        key = ApiKey.objects.get(name="Support bot")
        full = response.context["new_key"]["text"]
        assert full.encode() in response.content and hash_key(full) == key.key_hash
        page = client.get(url)
        assert full.encode() not in page.content and key.display_prefix.encode() in page.content

    def test_bad_input_is_a_400_with_the_field_message(self, client_for, admin_user, workspace):
        response = client_for(admin_user).post(f"/gateway/{workspace.slug}/keys/", {"name": " ", "scopes": []})
        assert response.status_code == 400
        assert b"Give the key a name." in response.content and b"Choose at least one scope." in response.content
        yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
        response = client_for(admin_user).post(
            f"/gateway/{workspace.slug}/keys/", {"name": "k", "scopes": ["completions"], "expires_on": yesterday}
        )
        assert response.status_code == 400 and b"Choose a date in the future." in response.content

    def test_revoke(self, client_for, admin_user, api_key, workspace):
        key, full = api_key
        response = client_for(admin_user).post(f"/gateway/{workspace.slug}/keys/{key.pk}/revoke/")
        assert response.status_code == 302
        key.refresh_from_db()
        assert key.revoked_at is not None

    def test_keys_list_query_count_does_not_grow(self, client_for, admin_user, workspace, django_assert_num_queries):
        client = client_for(admin_user)
        url = f"/gateway/{workspace.slug}/keys/"
        ApiKey.create(workspace, "one", admin_user)
        ApiKey.create(workspace, "two", admin_user)
        client.get(url)  # warm the session
        # user, memberships, workspace, keys with their creators (the session comes from the cache)
        with django_assert_num_queries(4):
            assert client.get(url).status_code == 200
        for n in range(48):
            ApiKey.create(workspace, f"key {n}", admin_user)
        with django_assert_num_queries(4):
            response = client.get(url)
            assert response.content.count(b"gw_") >= 50


class TestCreateApiKeyCommand:
    def test_prints_only_the_key_on_its_last_line(self, workspace, capsys):
        call_command("create_api_key", workspace.slug, "deploy script", "--expires-days", "30")
        out = capsys.readouterr().out.strip().splitlines()
        key = ApiKey.objects.get(name="deploy script")
        assert hash_key(out[-1]) == key.key_hash
        assert key.created_by.email == "owner@example.com"
        assert key.expires_at > timezone.now() + timedelta(days=29)

    def test_unknown_workspace(self, db):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match="No workspace"):
            call_command("create_api_key", "nope", "x")
