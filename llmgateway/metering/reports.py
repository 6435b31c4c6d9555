"""Usage figures for the pages, the REST API and `manage.py usage_report`: one set of queries, so they agree.

    rows = reports.records_for(user, workspace, since, until)   # what this user may see, in the range
    reports.totals(rows)             # {"requests", "hits", "lookups", "hit_rate", "prompt_tokens", ...}
    reports.series(rows, "day", since, until)   # one point per day (or hour), empty ones included
    reports.breakdown(rows, "model")            # one row per model (user, key, assistant, day)

Records are written in bulk a moment after each request; every reader drains
the queue first (`records.drain()`), so the figures include the last request.
Rolled-up days (UsageDaily) count in the daily series and the totals of
ranges older than the retention.
"""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from llmgateway.metering import records
from llmgateway.models import UsageDaily, UsageRecord

BREAKDOWNS = ("user", "model", "key", "assistant", "day")
LOOKUPS = Q(cache__in=["hit", "miss", "coalesced"])


def date_range(since=None, until=None, default_days=30):
    """(start, end) datetimes for dates (inclusive), in the server's time zone; defaults: the last 30 days."""
    today = timezone.localdate()
    until = until or today
    since = since or until - timedelta(days=default_days - 1)
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(since, time.min), zone)
    end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min), zone)
    return start, end


def records_for(user, workspace, since=None, until=None, *, drain=True):
    """The rows this user may see in the workspace (all for those who may view usage, else their own)."""
    if drain:
        records.drain()
    start, end = date_range(since, until)
    return UsageRecord.objects.visible_to(user, workspace).filter(created_at__gte=start, created_at__lt=end)


def _aggregates():
    return {
        "requests": Count("id"),
        "hits": Count("id", filter=Q(cache="hit")),
        "lookups": Count("id", filter=LOOKUPS),
        "refused": Count("id", filter=Q(cache="refused")),
        "errors": Count("id", filter=Q(cache="error")),
        "prompt_tokens": Sum("prompt_tokens"),
        "completion_tokens": Sum("completion_tokens"),
        "cost": Sum("cost"),
    }


def _finish(row):
    row = dict(row)
    for name in ("prompt_tokens", "completion_tokens"):
        row[name] = row.get(name) or 0
    row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    row["cost"] = row.get("cost") or Decimal("0")
    row["hit_rate"] = round(row["hits"] / row["lookups"], 4) if row.get("lookups") else None
    return row


def totals(rows):
    """One query: the range's totals."""
    return _finish(rows.aggregate(**_aggregates()))


def series(rows, bucket, since=None, until=None):
    """One query: a point per day or hour of the range, empty buckets included."""
    trunc = TruncHour if bucket == "hour" else TruncDay
    zone = timezone.get_current_timezone()
    found = {
        timezone.localtime(row["at"], zone): _finish(row)
        for row in rows.annotate(at=trunc("created_at", tzinfo=zone)).values("at").annotate(**_aggregates()).order_by()
    }
    start, end = date_range(since, until)
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    points, at = [], timezone.localtime(start, zone)
    empty = _finish({"requests": 0, "hits": 0, "lookups": 0, "refused": 0, "errors": 0})
    while at < end and len(points) < 24 * 93:
        points.append({"at": at, **found.get(at, empty)})
        at = timezone.localtime(at + step, zone) if bucket == "hour" else _next_day(at, zone)
    return points


def _next_day(at, zone):
    return timezone.make_aware(datetime.combine(at.date() + timedelta(days=1), time.min), zone)


def breakdown(rows, by):
    """One query (plus one for names): a row per user, model, key, assistant or day, busiest first."""
    if by not in BREAKDOWNS:
        raise ValueError(f"unknown breakdown {by!r}")
    if by == "day":
        zone = timezone.get_current_timezone()
        grouped = rows.annotate(group=TruncDay("created_at", tzinfo=zone)).values("group")
        out = [_finish(row) for row in grouped.annotate(**_aggregates()).order_by("group")]
        for row in out:
            row["label"] = timezone.localtime(row["group"], zone).date().isoformat()
        return out
    column = {"user": "user_id", "model": "model", "key": "api_key_id", "assistant": "assistant_id"}[by]
    grouped = rows.annotate(group=F(column)).values("group").annotate(**_aggregates()).order_by("-requests", "group")
    out = [_finish(row) for row in grouped]
    names = _names(by, [row["group"] for row in out])
    for row in out:
        row["label"] = names.get(row["group"], row["group"]) if row["group"] is not None else _none_label(by)
    return out


def _none_label(by):
    return {"user": "(no user)", "key": "(pages, no key)", "assistant": "(no assistant)", "model": "(none)"}[by]


def _names(by, ids):
    ids = [i for i in ids if i is not None]
    if not ids or by == "model":
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


def rollup(before, dry_run=False):
    """Roll rows older than `before` up into daily totals and delete them; (rows, daily rows) affected."""
    from django.db import transaction

    zone = timezone.get_current_timezone()
    old = UsageRecord.objects.filter(created_at__lt=before)
    groups = (
        old.annotate(day=TruncDay("created_at", tzinfo=zone))
        .values("workspace_id", "day", "user_id", "api_key_id", "assistant_id", "model")
        .annotate(**_aggregates())
        .order_by()
    )
    count = old.count()
    if dry_run:
        return count, groups.count()
    with transaction.atomic():
        daily = [
            UsageDaily(
                workspace_id=g["workspace_id"],
                day=timezone.localtime(g["day"], zone).date(),
                user_id=g["user_id"],
                api_key_id=g["api_key_id"],
                assistant_id=g["assistant_id"],
                model=g["model"],
                requests=g["requests"],
                hits=g["hits"],
                lookups=g["lookups"],
                prompt_tokens=g["prompt_tokens"] or 0,
                completion_tokens=g["completion_tokens"] or 0,
                cost=g["cost"] or 0,
            )
            for g in groups
        ]
        UsageDaily.objects.bulk_create(daily, batch_size=500)
        old.delete()
    return count, len(daily)
