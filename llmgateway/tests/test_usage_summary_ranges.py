"""The usage summary's totals cover the whole range; a range its buckets cannot show is refused, never cut."""

import uuid
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from llmgateway.metering import reports, totals
from llmgateway.models import UsageRecord

SUMMARY = "/api/gateway/acme/usage/summary/"
HOURLY_DAYS = 93  # what hourly buckets cover at most (hourly totals are kept 90 days)


def stored(workspace, user, ages):
    """One usage record per age (a timedelta before now), stored as the bulk writer stores them."""
    now = timezone.now()
    rows = [
        UsageRecord(
            request_id=uuid.uuid4(),
            workspace=workspace,
            user=user,
            model="offline",
            prompt_tokens=10,
            completion_tokens=5,
            cost=Decimal("0.01"),
            cache="miss",
            latency_ms=3,
            created_at=now - age,
        )
        for age in ages
    ]
    totals.store(rows)
    return rows


def test_an_hourly_summary_over_more_days_than_its_buckets_cover_is_refused(workspace, admin_user, api_client_for):
    stored(workspace, admin_user, [timedelta(hours=1)])
    client = api_client_for(admin_user)
    today = timezone.localdate()
    limit = HOURLY_DAYS
    refused = client.get(SUMMARY, {"bucket": "hour", "since": today - timedelta(days=limit), "until": today})
    assert refused.status_code == 400
    assert f"at most {limit} days" in refused.json()["bucket"][0]
    # The longest range it covers has every hour, and the totals of all of them.
    body = client.get(SUMMARY, {"bucket": "hour", "since": today - timedelta(days=limit - 1)}).json()
    assert abs(len(body["series"]) - 24 * limit) <= 1  # a day of a change of clocks has 23 or 25 hours
    assert body["totals"]["requests"] == 1 == sum(point["requests"] for point in body["series"])


def test_one_end_of_the_range_is_checked_with_the_default_of_the_other(workspace, admin_user, api_client_for):
    client = api_client_for(admin_user)
    today = timezone.localdate()
    for query in (
        {"since": "2000-01-01"},
        {"since": today + timedelta(days=1)},
        {"since": today - timedelta(days=367)},
    ):
        for path in (SUMMARY, "/api/gateway/acme/usage/"):
            response = client.get(path, query)
            assert response.status_code == 400 and "since" in response.json(), (path, query)
    for query in ({"since": today}, {"since": today - timedelta(days=366)}, {"until": "2000-01-01"}):
        assert client.get(SUMMARY, query).status_code == 200, query


def test_totals_add_up_every_bucket_of_the_range_where_the_points_stop_short(workspace, admin_user, client_for):
    rows = stored(workspace, admin_user, [timedelta(days=d) for d in (0, 1, 40, 4000)])
    since = timezone.localdate() - timedelta(days=4100)
    usage = reports.usage_for(admin_user, workspace, since)
    points = reports.series(usage, "day")
    assert points[0]["at"].date() == since and len(points) < 4100  # a chart's worth, from the first day
    assert reports.total_of(points)["requests"] == len(rows) == reports.totals(usage)["requests"]
    # The Usage page, which reads the same reports, shows every request of the longest range it takes
    # (366 days before today; a longer one is refused, as by the API).
    longest = timezone.localdate() - timedelta(days=366)
    page = client_for(admin_user).get("/gateway/acme/usage/", {"since": longest}).content.decode()
    assert f"<strong>{len(rows) - 1}</strong><span>requests</span>" in page
    assert client_for(admin_user).get("/gateway/acme/usage/", {"since": since}).status_code == 400
