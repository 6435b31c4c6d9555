"""Usage figures for the pages, the REST API and `manage.py usage_report`: one set of queries, so they agree.

    usage = reports.usage_for(user, workspace, since, until)   # what this user may see, in the range
    reports.totals(usage)            # {"requests", "hits", "lookups", "hit_rate", "prompt_tokens", ...}
    reports.series(usage, "day")     # one point per day (or hour), empty ones included
    reports.breakdown(usage, "model")   # one row per model (user, key, assistant, day)

The figures come from the hourly and daily totals (UsageHour, UsageDay) that
the bulk writer adds to as it stores the records (totals.py), never from the
records themselves: a month of a busy workspace is a few thousand daily rows.
Records are written a moment after each request; every reader drains the
queue first (`records.drain()`), so the figures include the last request.
The records stay for the paginated list (`usage_for(...).records`).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import F, Q, Sum
from django.utils import timezone

from llmgateway.metering import records
from llmgateway.models import UsageDay, UsageHour, UsageRecord

BREAKDOWNS = ("user", "model", "key", "assistant", "day")
LOOKUPS = Q(cache__in=["hit", "miss", "coalesced"])
# Filters of the API and their columns: the same names on the records and on the totals.
FILTERS = {"user": "user_id", "api_key": "api_key_id", "assistant": "assistant_id", "model": "model", "cache": "cache"}


def date_range(since=None, until=None, default_days=30):
    """(start, end) datetimes for dates (inclusive), in the server's time zone; defaults: the last 30 days.

    The first and last days a date can be (0001-01-01, 9999-12-31) are taken a day in, so the day after
    `until`, the days before it and the datetimes in any time zone all exist.
    """
    first, last = date.min + timedelta(days=1), date.max - timedelta(days=1)
    until = min(max(until or timezone.localdate(), first), last)
    since = min(max(since or until - timedelta(days=min(default_days - 1, (until - first).days)), first), last)
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(since, time.min), zone)
    end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min), zone)
    return start, end


@dataclass
class Usage:
    """What one reader may see of a workspace's usage in a date range: querysets, not evaluated."""

    days: object  # UsageDay rows: totals, daily series, breakdowns
    hours: object  # UsageHour rows: the hourly series
    records: object  # UsageRecord rows: the list
    since: object
    until: object

    def filter(self, **values):
        """Narrowed by the API's filters (user, api_key, assistant, model, cache); None values are ignored."""
        where = {FILTERS[name]: value for name, value in values.items() if value is not None}
        if not where:
            return self
        return Usage(
            self.days.filter(**where),
            self.hours.filter(**where),
            self.records.filter(**where),
            self.since,
            self.until,
        )


def usage_for(user, workspace, since=None, until=None, *, drain=True):
    """The usage this user may see in the workspace (all for those who may view usage, else their own)."""
    if drain:
        records.drain()
    start, end = date_range(since, until)
    first, last = start.date(), (end - timedelta(days=1)).date()
    if user is None:  # commands: the whole workspace
        days, hours = UsageDay.objects.in_workspace(workspace), UsageHour.objects.in_workspace(workspace)
        rows = UsageRecord.objects.in_workspace(workspace)
    else:
        days, hours = UsageDay.objects.visible_to(user, workspace), UsageHour.objects.visible_to(user, workspace)
        rows = UsageRecord.objects.visible_to(user, workspace)
    return Usage(
        days.filter(day__gte=first, day__lte=last),
        hours.filter(hour__gte=start, hour__lt=end),
        rows.filter(created_at__gte=start, created_at__lt=end),
        since,
        until,
    )


NAMES = ("requests", "hits", "lookups", "refused", "errors", "prompt_tokens", "completion_tokens", "cost")


def _aggregates():
    # Named apart from the columns they add up (an aggregate may not share a column's name).
    return {
        "all_requests": Sum("requests"),
        "all_hits": Sum("requests", filter=Q(cache="hit")),
        "all_lookups": Sum("requests", filter=LOOKUPS),
        "all_refused": Sum("requests", filter=Q(cache="refused")),
        "all_errors": Sum("requests", filter=Q(cache="error")),
        "all_prompt_tokens": Sum("prompt_tokens"),
        "all_completion_tokens": Sum("completion_tokens"),
        "all_cost": Sum("cost"),
    }


def _finish(row):
    row = {name.removeprefix("all_"): value for name, value in row.items()}
    for name in NAMES[:-1]:
        row[name] = row.get(name) or 0
    row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    row["cost"] = row.get("cost") or Decimal("0")
    row["hit_rate"] = round(row["hits"] / row["lookups"], 4) if row.get("lookups") else None
    return row


def totals(usage):
    """One query: the range's totals."""
    return _finish(usage.days.aggregate(**_aggregates()))


# The most days a series covers, by bucket: callers refuse a longer range (range_error) rather than cut it.
SERIES_DAYS = {"hour": 93, "day": 367}
# What series() makes at most, whatever it is asked (a bound on the work; a DST day has 25 hours).
MAX_POINTS = 25 * SERIES_DAYS["hour"]


class Series(list):
    """The points of a series; `rows` are the buckets that hold data, all of the range's, whatever the points."""

    rows = ()


def range_error(since=None, until=None, bucket="day"):
    """(field, message) when the range (dates, a missing one at its default) cannot be shown, else None."""
    if since is not None and until is None and since > timezone.localdate():
        return "since", "The first day must not be after the last day (default: today)."
    if since is not None and until is not None and since > until:
        return "since", "The first day must not be after the last day."
    start, end = date_range(since, until)
    days = (end.date() - start.date()).days
    if days > SERIES_DAYS["day"]:
        return "since", f"Choose at most {SERIES_DAYS['day'] - 1} days."
    if bucket == "hour" and days > SERIES_DAYS["hour"]:
        return "bucket", f"Hourly buckets cover at most {SERIES_DAYS['hour']} days: choose fewer days, or bucket=day."
    return None


def total_of(points):
    """The range's totals, added up from the data behind its series (no query), not from the points shown."""
    rows = points.rows if isinstance(points, Series) else points
    return _finish({name: sum(row[name] for row in rows) for name in NAMES})


def series(usage, bucket):
    """One query: a point per day or hour of the range, empty buckets included (at most MAX_POINTS).

    total_of() of it adds up every bucket of the range, also where the points stop short.
    """
    zone = timezone.get_current_timezone()
    if bucket == "hour":
        found = {
            timezone.localtime(row["hour"], zone): _finish(row)
            for row in usage.hours.values("hour").annotate(**_aggregates()).order_by()
        }
    else:
        found = {
            timezone.make_aware(datetime.combine(row["day"], time.min), zone): _finish(row)
            for row in usage.days.values("day").annotate(**_aggregates()).order_by()
        }
    start, end = date_range(usage.since, usage.until)
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    points, at = Series(), timezone.localtime(start, zone)
    points.rows = list(found.values())
    empty = _finish({})
    while at < end and len(points) < MAX_POINTS:
        points.append({"at": at, **found.get(at, empty)})
        at = timezone.localtime(at + step, zone) if bucket == "hour" else _next_day(at, zone)
    return points


def _next_day(at, zone):
    return timezone.make_aware(datetime.combine(at.date() + timedelta(days=1), time.min), zone)


def breakdown(usage, by):
    """One query (plus one for names): a row per user, model, key, assistant or day, busiest first."""
    if by not in BREAKDOWNS:
        raise ValueError(f"unknown breakdown {by!r}")
    if by == "day":
        out = [_finish(row) for row in usage.days.values("day").annotate(**_aggregates()).order_by("day")]
        for row in out:
            row["label"] = row.pop("day").isoformat()
        return out
    column = {"user": "user_id", "model": "model", "key": "api_key_id", "assistant": "assistant_id"}[by]
    grouped = (
        usage.days.annotate(group=F(column))
        .values("group")
        .annotate(**_aggregates())
        .order_by("-all_requests", "group")
    )
    out = [_finish(row) for row in grouped]
    for row in out:
        if row["group"] == 0 and by != "model":
            row["group"] = None  # no user, key or assistant
    names = _names(by, [row["group"] for row in out])
    for row in out:
        row["label"] = names.get(row["group"], row["group"]) if row["group"] is not None else _none_label(by)
    return out


def _none_label(by):
    return {"user": "(no user)", "key": "(pages, no key)", "assistant": "(no assistant)", "model": "(none)"}[by]


def _names(by, ids):
    # Asked even with no ids (0 matches nothing), so a page makes the same queries whatever its data.
    ids = [i for i in ids if i is not None] or [0]
    if by == "model":
        return {}
    if by == "user":
        from django.contrib.auth import get_user_model

        return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "email"))
    if by == "key":
        from llmgateway.models import ApiKey

        return {
            pk: f"{name} (gw_{prefix}_…)"
            for pk, name, prefix in ApiKey.objects.filter(pk__in=ids).values_list("pk", "name", "prefix")
        }
    from django.apps import apps

    if apps.is_installed("assistants"):
        model = apps.get_model("assistants", "Assistant")
        return dict(model.objects.filter(pk__in=ids).values_list("pk", "name"))
    return {}


def prune(before, dry_run=False):
    """Delete the records and hourly totals older than `before`; the daily totals stay: (records, hours)."""
    old, hours = UsageRecord.objects.filter(created_at__lt=before), UsageHour.objects.filter(hour__lt=before)
    if dry_run:
        return old.count(), hours.count()
    # One DELETE each: nothing refers to these rows.
    return old.delete()[0], hours.delete()[0]
