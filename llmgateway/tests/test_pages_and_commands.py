"""Gateway pages, statistics endpoints, management commands and demo data."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from llmgateway import gateway
from llmgateway.cache import stats
from llmgateway.models import ModelConfig
from workspaces.models import Workspace

REQUEST = {"model": "offline", "messages": [{"role": "user", "content": "hello"}]}


def test_landing_page_lists_my_workspaces_only(client_for, member, workspace, other_workspace):
    second = Workspace.objects.create(name="Second Team", slug="second", created_by=member)
    second.memberships.create(user=member, role="viewer")
    response = client_for(member).get(reverse("llmgateway:home"))
    assert response.status_code == 200
    assert b"Acme Research" in response.content and b"Second Team" in response.content
    assert b"Globex Secret" not in response.content
    # Members see models but not the admin links.
    assert f"/gateway/{workspace.slug}/keys/".encode() not in response.content
    assert b"/v1/chat/completions" in response.content


def test_landing_page_goes_straight_to_the_only_workspace(client_for, member, workspace, other_workspace):
    response = client_for(member).get(reverse("llmgateway:home"))
    assert response.status_code == 302 and response["Location"] == f"/gateway/{workspace.slug}/models/"


def test_the_workspace_overview_links_to_the_gateway(client_for, viewer, workspace):
    """The overview's "Model gateway" card leads to a page, not a 404."""
    client = client_for(viewer)
    overview = client.get(reverse("workspaces:detail", args=[workspace.slug])).content.decode()
    gateway_link = f'href="/gateway/{workspace.slug}/"'
    assert gateway_link in overview
    response = client.get(f"/gateway/{workspace.slug}/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(f"/gateway/{workspace.slug}/models/", 302)]
    assert b"Use it from code" in response.content


def test_landing_page_needs_sign_in(client):
    assert client.get(reverse("llmgateway:home")).status_code == 302


def test_models_page(client_for, viewer, workspace, remote_model):
    response = client_for(viewer).get(reverse("llmgateway:models", args=[workspace.slug]))
    assert response.status_code == 200
    assert b"remote" in response.content and b"offline" in response.content
    assert b"sk-upstream" not in response.content


def test_cache_page_shows_the_workspaces_figures(client_for, admin_user, workspace):
    gateway.complete(workspace, REQUEST)
    gateway.complete(workspace, REQUEST)
    response = client_for(admin_user).get(reverse("llmgateway:cache", args=[workspace.slug]))
    assert response.status_code == 200
    assert response.context["stats"]["hit"] == 1 and response.context["stats"]["miss"] == 1
    assert b"50%" in response.content


def test_cache_policy_form(client_for, admin_user, workspace):
    url = reverse("llmgateway:cache", args=[workspace.slug])
    client = client_for(admin_user)
    assert client.post(url, {"cache_policy": "deterministic"}).status_code == 302
    workspace.refresh_from_db()
    assert workspace.cache_policy == "deterministic"
    response = client.post(url, {"cache_policy": "sometimes"})
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content


def test_cache_clear_page(client_for, admin_user, workspace):
    gateway.complete(workspace, REQUEST)
    response = client_for(admin_user).post(reverse("llmgateway:cache_clear", args=[workspace.slug]))
    assert response.status_code == 302
    assert not gateway.complete(workspace, REQUEST).cache_hit


def test_workspace_stats_api(api_client_for, admin_user, workspace, other_workspace):
    gateway.complete(workspace, REQUEST)
    gateway.complete(workspace, REQUEST)
    gateway.complete(other_workspace, REQUEST)
    body = api_client_for(admin_user).get(f"/api/gateway/{workspace.slug}/cache/").json()
    assert (body["workspace"], body["hit"], body["miss"], body["hit_rate"]) == ("acme", 1, 1, 0.5)
    assert body["hit_latency_ms"]["mean"] is not None


def test_overall_stats_api_is_for_staff(api_client_for, admin_user, make_user, workspace, other_workspace):
    gateway.complete(workspace, REQUEST)
    gateway.complete(other_workspace, REQUEST)
    assert api_client_for(admin_user).get("/api/gateway/cache/").status_code == 403
    staff = make_user("staff@example.com", is_staff=True)
    body = api_client_for(staff).get("/api/gateway/cache/").json()
    assert body["miss"] == 2 and body["workspace"] is None


def test_stats_percentiles_from_buckets(workspace):
    for ms in (0.5, 0.7, 3, 40):
        stats.record(workspace.pk, "hit", ms)
    summary = stats.summary(workspace.pk)
    assert summary["hit_latency_ms"]["p50_at_most"] == 1
    assert summary["hit_latency_ms"]["p95_at_most"] == 50


class TestCommands:
    def test_add_model_and_update(self, db, monkeypatch):
        call_command(
            "add_model",
            "gpt-test",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--upstream-model",
            "gpt-4o-mini",
            "--api-key-env",
            "GPT_TEST_KEY",
            "--price-input",
            "0.15",
            "--timeout",
            "60",
        )
        model = ModelConfig.objects.get(name="gpt-test")
        assert (model.provider, model.upstream_model, model.timeout_seconds) == ("openai-compatible", "gpt-4o-mini", 60)
        assert str(model.price_input_per_1k) == "0.150000" and model.api_key_encrypted == ""
        monkeypatch.setenv("GPT_SECRET", "sk-stored")
        call_command("add_model", "gpt-test", "--store-key-from-env", "GPT_SECRET", "--default")
        model.refresh_from_db()
        assert model.is_default and model.api_key_encrypted and "sk-stored" not in model.api_key_encrypted
        from llmgateway import registry

        assert registry.get_spec("gpt-test").api_key() == "sk-stored"

    @pytest.mark.parametrize(
        "args, message",
        [
            (["--base-url", "ftp://x", "--upstream-model", "m"], "base_url"),
            (["--upstream-model", "m"], "base_url"),
            (["--base-url", "http://127.0.0.1:1/v1", "--upstream-model", "m", "--fallback", "nope"], "fallback"),
        ],
    )
    def test_add_model_refuses_bad_input(self, db, args, message):
        with pytest.raises(CommandError, match=message):
            call_command("add_model", "bad", *args)

    def test_cache_stats_and_clear(self, workspace, other_workspace, capsys):
        gateway.complete(workspace, REQUEST)
        gateway.complete(workspace, REQUEST)
        call_command("cache_stats")
        out = capsys.readouterr().out
        assert "(all)" in out and "acme" in out and "50.0%" in out
        call_command("cache_stats", "acme", "--json")
        assert json.loads(capsys.readouterr().out)["acme"]["hit"] == 1
        call_command("cache_clear", "acme")
        assert not gateway.complete(workspace, REQUEST).cache_hit
        gateway.complete(other_workspace, REQUEST)
        call_command("cache_clear", "--all")
        assert "2 workspace" in capsys.readouterr().out
        assert not gateway.complete(other_workspace, REQUEST).cache_hit
        with pytest.raises(CommandError):
            call_command("cache_clear")
        with pytest.raises(CommandError):
            call_command("cache_clear", "nope")


def test_demo_registers_the_offline_model_once(admin_user):
    from llmgateway import demo

    assert demo.populate(admin_user) == []
    assert demo.populate(admin_user) == []
    model = ModelConfig.objects.get()
    assert (model.name, model.provider, model.is_default) == ("offline", "offline", True)


def test_archived_workspace_in_python_api(workspace):
    Workspace.objects.filter(pk=workspace.pk).update(archived=True)
    from llmgateway.cache.entries import forget_workspace

    forget_workspace(workspace.pk)
    with pytest.raises(gateway.GatewayError) as caught:
        gateway.complete(workspace, REQUEST)
    assert caught.value.status == 403


def test_api_address_comes_from_the_request_behind_the_proxy(client_for, admin_user, workspace, settings):
    settings.SITE_URL = ""
    settings.ALLOWED_HOSTS = ["ai.example.com", "testserver"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    client = client_for(admin_user)
    proxy = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "ai.example.com"}
    models_page = client.get(reverse("llmgateway:models", args=[workspace.slug]), **proxy).content.decode()
    assert "curl https://ai.example.com/v1/chat/completions" in models_page
    assert "127.0.0.1:8000" not in models_page
    created = client.post(
        reverse("llmgateway:keys", args=[workspace.slug]), {"name": "ci", "scopes": ["completions"]}, **proxy
    ).content.decode()
    assert "Key “ci” created" in created
    assert "against <code>https://ai.example.com/v1</code>" in created
    # Without the proxy, the address the browser used.
    direct = client.get(reverse("llmgateway:models", args=[workspace.slug])).content.decode()
    assert "curl http://testserver/v1/chat/completions" in direct


def test_api_address_from_site_url(client_for, viewer, workspace, settings):
    settings.SITE_URL = "https://gateway.example.org"
    page = client_for(viewer).get(reverse("llmgateway:models", args=[workspace.slug])).content.decode()
    assert "curl https://gateway.example.org/v1/chat/completions" in page
