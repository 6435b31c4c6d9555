"""Usage and limits through the REST API, the admin and the commands: the same figures, the same checks."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from llmgateway import gateway
from llmgateway.models import ApiKey, Limit


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def traffic(workspace, member, admin_user, remote_model, upstream):
    """Six completions: the member asks two questions (one twice), the admin one (three times)."""
    for text in ("alpha", "alpha", "beta"):
        gateway.complete(workspace, {"model": "remote", "messages": [{"role": "user", "content": text}]}, user=member)
    for _ in range(3):
        gateway.complete(
            workspace, {"model": "offline", "messages": [{"role": "user", "content": "x"}]}, user=admin_user
        )


def test_members_see_their_own_usage_admins_the_workspaces(traffic, workspace, member, admin_user, api_client_for):
    mine = api_client_for(member).get("/api/gateway/acme/usage/").json()
    assert mine["count"] == 3 and {r["user"] for r in mine["results"]} == {member.email}
    everyone = api_client_for(admin_user).get("/api/gateway/acme/usage/?model=offline").json()
    assert everyone["count"] == 3
    summary = api_client_for(admin_user).get("/api/gateway/acme/usage/summary/?by=user").json()
    assert summary["totals"]["requests"] == 6 and summary["totals"]["hits"] == 3
    assert {r["label"]: r["requests"] for r in summary["breakdown"]} == {member.email: 3, admin_user.email: 3}
    assert len(summary["series"]) == 30
    refused = api_client_for(member).get("/api/gateway/acme/usage/summary/?by=user")
    assert refused.status_code == 403


def test_usage_filters_are_checked(traffic, admin_user, api_client_for):
    client = api_client_for(admin_user)
    bad = client.get("/api/gateway/acme/usage/?since=yesterday")
    assert bad.status_code == 400 and "since" in bad.json()
    backwards = client.get("/api/gateway/acme/usage/?since=2026-02-02&until=2026-01-01")
    assert backwards.status_code == 400 and "since" in backwards.json()


def test_usage_list_costs_the_same_queries_for_2_and_50_rows(
    workspace, member, admin_user, api_client_for, django_assert_max_num_queries
):
    client = api_client_for(admin_user)
    for i in range(50):
        gateway.complete(
            workspace, {"model": "offline", "messages": [{"role": "user", "content": f"q{i}"}]}, user=member
        )
    client.get("/api/gateway/acme/usage/")  # drain
    # token + user, memberships, workspace, count, page of records with their users
    with django_assert_max_num_queries(7):
        assert client.get("/api/gateway/acme/usage/").json()["count"] == 50


def test_limits_through_the_api_with_field_errors(workspace, member, outsider, admin_user, api_client_for):
    client = api_client_for(admin_user)
    done = client.put(
        "/api/gateway/acme/limits/workspace/",
        {"rpm": 60, "tpm": None, "max_concurrent": 4, "daily_budget": "25.50", "monthly_budget": None},
        format="json",
    )
    assert done.status_code == 200, done.content
    assert Limit.objects.get(kind="workspace", workspace=workspace).daily_budget == Decimal("25.50")
    for body, field in (({"rpm": -1}, "rpm"), ({"daily_budget": "lots"}, "daily_budget"), ({"tpm": "ten"}, "tpm")):
        bad = client.patch("/api/gateway/acme/limits/workspace/", body, format="json")
        assert bad.status_code == 400 and field in bad.json()
    assert Limit.objects.get(kind="workspace", workspace=workspace).rpm == 60  # nothing changed
    assert client.put(f"/api/gateway/acme/limits/users/{outsider.pk}/", {"rpm": 5}, format="json").status_code == 404
    assert client.patch(f"/api/gateway/acme/limits/users/{member.pk}/", {"rpm": 5}, format="json").status_code == 200
    quota = api_client_for(member).get("/api/gateway/acme/usage/quota/").json()
    assert [s["scope"] for s in quota["limits"]] == ["workspace", "user"]
    assert quota["limits"][1]["items"][0] == quota["limits"][1]["items"][0] | {"name": "rpm", "limit": 5, "used": 0}


def test_create_api_key_with_limits_prints_only_the_key_last(workspace, admin_user):
    out = run("create_api_key", "acme", "script", "--rpm", "60", "--daily-budget", "12.5")
    key = ApiKey.objects.get(name="script")
    assert out.strip().splitlines()[-1].startswith(f"gw_{key.prefix}_")
    assert (key.limit.rpm, key.limit.daily_budget) == (60, Decimal("12.5"))
    with pytest.raises(CommandError, match="--rpm"):
        run("create_api_key", "acme", "bad", "--rpm", "-3")
    with pytest.raises(CommandError, match="--monthly-budget"):
        run("create_api_key", "acme", "bad", "--monthly-budget", "ten dollars")
    assert not ApiKey.objects.filter(name="bad").exists()


def test_set_limits_for_the_workspace_a_member_and_removal(workspace, member, outsider):
    assert "rpm=10" in run("set_limits", "acme", "--rpm", "10", "--monthly-budget", "100")
    assert Limit.objects.get(kind="workspace").monthly_budget == 100
    run("set_limits", "acme", "--user", member.email, "--tpm", "1000")
    assert Limit.objects.get(kind="user", user=member).tpm == 1000
    with pytest.raises(CommandError, match="not a member"):
        run("set_limits", "acme", "--user", outsider.email, "--rpm", "5")
    with pytest.raises(CommandError, match="--max-concurrent"):
        run("set_limits", "acme", "--max-concurrent", "x")
    run("set_limits", "acme", "--rpm", "none", "--monthly-budget", "none")
    assert not Limit.objects.filter(kind="workspace").exists()


def test_usage_report_agrees_with_the_api(traffic, admin_user, api_client_for):
    api = api_client_for(admin_user).get("/api/gateway/acme/usage/summary/?by=model").json()
    report = json.loads(run("usage_report", "acme", "--by", "model", "--format", "json"))
    assert {r["label"]: r["requests"] for r in report["rows"]} == {r["label"]: r["requests"] for r in api["breakdown"]}
    assert Decimal(report["total"]["cost"]) == pytest.approx(Decimal(str(api["totals"]["cost"])))
    rows = list(csv.DictReader(io.StringIO(run("usage_report", "acme", "--by", "model", "--format", "csv"))))
    assert {r["label"]: int(r["requests"]) for r in rows} == {"remote": 3, "offline": 3}
    assert "total" in run("usage_report", "acme", "--by", "day")
    with pytest.raises(CommandError, match="--since"):
        run("usage_report", "acme", "--since", "31/01/2026")


def test_staff_edit_limits_in_the_admin(workspace, member, client, django_user_model):
    staff = django_user_model.objects.create_superuser(email="staff@example.com", password="pw-123-long-enough")
    client.force_login(staff)
    page = client.post(
        "/admin/llmgateway/limit/add/",
        {"kind": "workspace", "workspace": "", "user": "", "api_key": "", "rpm": "100"},
    )
    assert page.status_code == 302
    assert Limit.objects.get(workspace__isnull=True, kind="workspace").rpm == 100
    bad = client.post(
        "/admin/llmgateway/limit/add/",
        {"kind": "user", "workspace": workspace.pk, "user": staff.pk, "api_key": "", "rpm": "-5"},
    )
    assert bad.status_code == 200
    assert "not a member" in bad.content.decode()
    assert client.get("/admin/llmgateway/usagerecord/").status_code == 200
