"""Hourly and daily usage totals, added to in the transaction that stores each batch of usage records.

    totals.store(records)    # UsageRecord objects: inserts the new ones and adds them to their hour and day
    totals.rebuild()         # recompute every total from the records (after a restore, or to check)

A batch is grouped by combination (workspace, period, user, key, assistant,
model, cache outcome) and added with one INSERT ... ON CONFLICT DO UPDATE per
table and chunk (SQLite and PostgreSQL alike). Records already stored (a
batch written twice by a drainer that died before removing it from the
queue) are left out of both the insert and the totals, so each record counts
once. Hours and days are those of TIME_ZONE, so a day's hours add up to the
day exactly.
"""

from collections import defaultdict
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

ZERO = Decimal("0")


def _hour_and_day(at, zone):
    local = timezone.localtime(at, zone)
    return local.replace(minute=0, second=0, microsecond=0), local.date()


def _group(record):
    return (
        record.workspace_id,
        record.user_id or 0,
        record.api_key_id or 0,
        record.assistant_id or 0,
        record.model,
        record.cache,
    )


def add_up(records):
    """({(hour, group): sums}, {(day, group): sums}) of some UsageRecord objects; sums: [requests, in, out, cost, ms]."""
    zone = timezone.get_current_timezone()
    hours, days = defaultdict(lambda: [0, 0, 0, ZERO, 0.0]), defaultdict(lambda: [0, 0, 0, ZERO, 0.0])
    periods = {}
    for record in records:
        stamp = int(record.created_at.timestamp()) // 60  # local hours start on a minute in every zone
        if stamp not in periods:
            periods[stamp] = _hour_and_day(record.created_at, zone)
        hour, day = periods[stamp]
        group = _group(record)
        for sums in (hours[(hour, group)], days[(day, group)]):
            sums[0] += 1
            sums[1] += record.prompt_tokens
            sums[2] += record.completion_tokens
            sums[3] += record.cost
            sums[4] += record.latency_ms
    return hours, days


def upsert(model, period, rows):
    """Add rows [(period value, group, sums)] to a totals table: one statement per chunk."""
    if not rows:
        return
    ops = connection.ops
    table = model._meta.db_table
    group_columns = ["workspace_id", "user_id", "api_key_id", "assistant_id", "model", "cache"]
    added = ["requests", "prompt_tokens", "completion_tokens", "cost", "latency_ms"]
    columns = [period, *group_columns, *added]
    quote = ops.quote_name
    adapt_period = ops.adapt_datetimefield_value if period == "hour" else ops.adapt_datefield_value
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = ", ".join(f"{quote(c)} = {quote(table)}.{quote(c)} + EXCLUDED.{quote(c)}" for c in added)
    conflict = ", ".join(quote(c) for c in [period, *group_columns])
    # SQLite allows 32,766 parameters (999 before 3.32); 80 rows of 12 stay under either.
    size = 80 if connection.vendor == "sqlite" else 1000
    rows = sorted(rows, key=lambda row: (row[0], row[1]))  # one order for every writer: no deadlock
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            params = []
            for value, group, sums in chunk:
                params += [adapt_period(value), *group]
                params += [sums[0], sums[1], sums[2], ops.adapt_decimalfield_value(sums[3], 16, 6), sums[4]]
            cursor.execute(
                f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES {', '.join([one] * len(chunk))} ON CONFLICT ({conflict}) DO UPDATE SET {updates}",
                params,
            )


def add(records):
    """Add UsageRecord objects (stored in this transaction) to the hourly and daily totals."""
    from llmgateway.models import UsageDay, UsageHour

    hours, days = add_up(records)
    upsert(UsageHour, "hour", [(hour, group, sums) for (hour, group), sums in hours.items()])
    upsert(UsageDay, "day", [(day, group, sums) for (day, group), sums in days.items()])


def store(records):
    """Insert UsageRecord objects not stored yet, and add those to the totals, in one transaction: how many.

    A request id seen twice keeps its first record (a refused request is recorded as refused, and
    not again as the error that the refusal raised), as the unique constraint on the records does.
    """
    from llmgateway.models import UsageRecord

    with transaction.atomic():
        ids = [record.request_id for record in records]
        stored = set()
        for start in range(0, len(ids), 500):
            stored.update(
                UsageRecord.objects.filter(request_id__in=ids[start : start + 500]).values_list("request_id", flat=True)
            )
        fresh = []
        for record in records:  # each request once: not stored before, nor twice in the batch
            request_id = _uuid(record.request_id)
            if request_id not in stored:
                stored.add(request_id)
                fresh.append(record)
        UsageRecord.objects.bulk_create(fresh, batch_size=500, ignore_conflicts=True)
        add(fresh)
    return len(fresh)


def _uuid(value):
    import uuid

    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def rebuild(workspace=None, models=None):
    """Recompute the totals from the usage records (of one workspace, or all): (hour rows, day rows).

    Records removed by `prune_usage` are gone while their totals stay, so only the days from the
    oldest record on are replaced. One aggregate query per table (the migration that added the
    totals runs it with its own `models`: (UsageRecord, UsageHour, UsageDay)).
    """
    from django.db.models import Count, F, Sum, Value
    from django.db.models.functions import Coalesce, TruncDate, TruncHour

    if models is None:
        from llmgateway.models import UsageDay, UsageHour, UsageRecord

        models = (UsageRecord, UsageHour, UsageDay)
    record_model, hour_model, day_model = models
    zone = timezone.get_current_timezone()
    records = record_model.objects.all()
    if workspace is not None:
        records = records.filter(workspace_id=getattr(workspace, "pk", workspace))
    counts = []
    with transaction.atomic():
        oldest = records.order_by("created_at").values_list("created_at", flat=True).first()
        if oldest is None:
            return 0, 0
        day = timezone.localtime(oldest, zone).date()
        start = timezone.make_aware(_midnight(day), zone)
        records = records.filter(created_at__gte=start)
        for model, period, trunc in (
            (hour_model, "hour", TruncHour("created_at", tzinfo=zone)),
            (day_model, "day", TruncDate("created_at", tzinfo=zone)),
        ):
            old = model.objects.filter(**{f"{period}__gte": start if period == "hour" else day})
            if workspace is not None:
                old = old.filter(workspace_id=getattr(workspace, "pk", workspace))
            old.delete()
            groups = (
                records.annotate(
                    period=trunc,
                    u=Coalesce("user_id", Value(0)),
                    k=Coalesce("api_key_id", Value(0)),
                    a=Coalesce("assistant_id", Value(0)),
                )
                .values("workspace_id", "period", "u", "k", "a", "model", "cache")
                .annotate(
                    n=Count("id"),
                    pt=Sum("prompt_tokens"),
                    ct=Sum("completion_tokens"),
                    c=Sum("cost"),
                    ms=Sum(F("latency_ms")),
                )
                .order_by()
            )
            made, batch = 0, []
            for g in groups.iterator(chunk_size=5000):
                batch.append(
                    model(
                        workspace_id=g["workspace_id"],
                        **{period: g["period"]},
                        user_id=g["u"],
                        api_key_id=g["k"],
                        assistant_id=g["a"],
                        model=g["model"],
                        cache=g["cache"],
                        requests=g["n"],
                        prompt_tokens=g["pt"] or 0,
                        completion_tokens=g["ct"] or 0,
                        cost=g["c"] or ZERO,
                        latency_ms=g["ms"] or 0.0,
                    )
                )
                if len(batch) == 5000:
                    model.objects.bulk_create(batch)
                    made, batch = made + len(batch), []
            model.objects.bulk_create(batch)
            counts.append(made + len(batch))
    return tuple(counts)


def _midnight(day):
    from datetime import datetime, time

    return datetime.combine(day, time.min)
