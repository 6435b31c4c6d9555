"""Bad limits: a field-level error on the page, in the API and in the commands, and nothing changed."""

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from llmgateway.models import ApiKey, Limit

BAD_COUNTS = ["-1", "ten", "1.5", "1e3", "99999999999", "1000000001", "NaN"]
BAD_BUDGETS = ["-0.01", "lots", "$5", "12,50", "1.23456", "123456789012345", "NaN", "Infinity"]


def run(*args):
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def limits(workspace, member):
    """The workspace's and the member's limits as they are before each bad attempt."""
    Limit.objects.create(kind="workspace", workspace=workspace, rpm=60, daily_budget=Decimal("25"))
    Limit.objects.create(kind="user", workspace=workspace, user=member, tpm=1000)

    def snapshot():
        return sorted(Limit.objects.values_list("kind", "workspace_id", "user_id", *Limit.FIELDS), key=str)

    return snapshot


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_bad_count_on_the_page(value, limits, admin_user, client_for):
    before = limits()
    page = client_for(admin_user).post("/gateway/acme/usage/limits/", {"target": "workspace", "workspace-rpm": value})
    assert page.status_code == 400
    html = page.content.decode()
    assert 'id="id_workspace-rpm_error"' in html  # the message sits under the field
    assert limits() == before


@pytest.mark.parametrize("value", BAD_BUDGETS)
def test_a_bad_budget_on_the_page(value, limits, admin_user, member, client_for):
    before = limits()
    page = client_for(admin_user).post(
        "/gateway/acme/usage/limits/", {"target": "user", "user": member.pk, "one-daily_budget": value}
    )
    assert page.status_code == 400
    assert 'id="id_one-daily_budget_error"' in page.content.decode()
    assert limits() == before


@pytest.mark.parametrize("value", [*BAD_COUNTS, -5, 2**40, 1.5, True, [], {}])
def test_a_bad_count_in_the_api(value, limits, admin_user, api_client_for):
    before = limits()
    bad = api_client_for(admin_user).patch(
        "/api/gateway/acme/limits/workspace/", {"max_concurrent": value}, format="json"
    )
    assert bad.status_code == 400, bad.content
    assert list(bad.json()) == ["max_concurrent"]
    assert limits() == before


@pytest.mark.parametrize("value", [*BAD_BUDGETS, -1, 1e20, [], {"usd": 5}])
def test_a_bad_budget_in_the_api(value, limits, admin_user, member, api_client_for):
    before = limits()
    bad = api_client_for(admin_user).patch(
        f"/api/gateway/acme/limits/users/{member.pk}/", {"monthly_budget": value}, format="json"
    )
    assert bad.status_code == 400, bad.content
    assert list(bad.json()) == ["monthly_budget"]
    assert limits() == before


def test_a_limit_for_someone_outside_the_workspace_in_the_api(limits, admin_user, outsider, api_client_for):
    before = limits()
    client = api_client_for(admin_user)
    for method in (client.put, client.patch):
        answer = method(f"/api/gateway/acme/limits/users/{outsider.pk}/", {"rpm": 5}, format="json")
        assert answer.status_code == 404
        assert answer.json()["detail"]
    assert client.patch("/api/gateway/acme/limits/users/not-a-number/", {"rpm": 5}, format="json").status_code == 404
    assert limits() == before


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--rpm", "-1"], "--rpm"),
        (["--tpm", "lots"], "--tpm"),
        (["--max-concurrent", "2.5"], "--max-concurrent"),
        (["--daily-budget", "$5"], "--daily-budget"),
        (["--daily-budget", "12,50"], "--daily-budget"),
        (["--monthly-budget", "-3"], "--monthly-budget"),
        (["--monthly-budget", "1.23456"], "--monthly-budget"),
        (["--monthly-budget", "NaN"], "--monthly-budget"),
        (["--rpm", "99999999999"], "--rpm"),
    ],
)
def test_bad_values_in_set_limits(args, flag, limits, member):
    before = limits()
    for who in ([], ["--user", member.email], ["--members"]):
        with pytest.raises(CommandError, match=flag):
            run("set_limits", "acme", *who, "--rpm", "5", *args)
    assert limits() == before


def test_set_limits_for_someone_outside_the_workspace(limits, outsider):
    before = limits()
    with pytest.raises(CommandError, match="--user: .* is not a member"):
        run("set_limits", "acme", "--user", outsider.email, "--rpm", "5")
    with pytest.raises(CommandError, match="--user: .* is not a member"):
        run("set_limits", "acme", "--user", "nobody@example.com", "--rpm", "5")
    assert limits() == before


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--tpm", "-1"], "--tpm"),
        (["--daily-budget", "1.23456"], "--daily-budget"),
        (["--max-concurrent", "x"], "--max-concurrent"),
    ],
)
def test_bad_values_in_create_api_key_make_no_key(args, flag, workspace, admin_user):
    with pytest.raises(CommandError, match=flag):
        run("create_api_key", "acme", "script", "--rpm", "60", *args)
    assert not ApiKey.objects.filter(name="script").exists()
    assert not Limit.objects.exists()
