"""Audit log benchmark: the log pages' queries, the export and pruning over a large table.

    .venv/bin/python bench/audit_bench.py                    # PostgreSQL (database audit_bench)
    .venv/bin/python bench/audit_bench.py --sqlite           # the embedded default
    .venv/bin/python bench/audit_bench.py --events 1000000 --database-url postgres://postgres@127.0.0.1:5432/my_bench

Fills the table with --events events over a year (100 workspaces, 2,000
people, the usual mix of actions), then times each list query the pages run
(a page of 50 through AuditFilterForm, as the views build it), prints
p50/p95 and whether the plan uses an index, the CSV export's rows per
second, and prune_audit's time for the oldest tenth. The database is the
benchmark's own (created if missing), never the app's.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACTIONS = [
    ("user.login", "user", 40),
    ("user.login_failed", "", 5),
    ("document.upload", "document", 20),
    ("document.delete", "document", 4),
    ("assistant.update", "assistant", 8),
    ("membership.update", "membership", 5),
    ("invitation.create", "invitation", 5),
    ("api_key.create", "apikey", 2),
    ("workspace.update", "workspace", 3),
    ("admin.change", "modelconfig", 1),
]


def configure(args):
    var = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    os.environ["VAR_DIR"] = str(var)
    if args.sqlite:
        os.environ["DATABASE_URL"] = f"sqlite:///{var / 'bench.sqlite3'}"
    else:
        import psycopg2

        url = args.database_url
        admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [url.rsplit("/", 1)[1]])
            if not cursor.fetchone():
                cursor.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
        admin.close()
        os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(n):
    from django.db import connection
    from django.utils import timezone

    from audit.models import AuditEvent

    existing = AuditEvent.objects.count()
    if existing >= n:
        print(f"table already holds {existing} events")
        return
    rng = random.Random(7)
    kinds = [kind for kind in ACTIONS for _ in range(kind[2])]
    now = timezone.now()
    start = time.perf_counter()
    batch = []
    for i in range(existing, n):
        action, object_type, _ = rng.choice(kinds)
        person = rng.randrange(2000)
        ws = rng.randrange(100)
        batch.append(
            AuditEvent(
                created_at=now - timedelta(seconds=rng.randrange(365 * 24 * 3600)),
                actor_id=person,
                actor_email=f"person{person}@example.com",
                action=action,
                workspace_id=None if object_type in ("user", "", "modelconfig") else ws,
                workspace_slug="" if object_type in ("user", "", "modelconfig") else f"team-{ws}",
                object_type=object_type,
                object_id=str(rng.randrange(100000)),
                object_repr=f"Object {i}",
                changes={"title": [None, f"Report {i}"]} if action.endswith("upload") else {},
                ip_address=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            )
        )
        if len(batch) == 10000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
    print(f"filled {n - existing} events in {time.perf_counter() - start:.1f} s")


def cases():
    from django.utils import timezone

    today = timezone.localdate()
    month_ago = (today - timedelta(days=30)).isoformat()
    return [
        ("staff page, no filter", {}, None),
        ("staff page 20", {}, 20),
        ("one workspace", {"workspace_id": 42}, None),
        (
            "one workspace, last 30 days, uploads",
            {"workspace_id": 42, "since": month_ago, "action": "document.upload"},
            None,
        ),
        ("one person", {"actor": "person123@example.com"}, None),
        ("one action (rare)", {"action": "admin.change"}, None),
        ("one object type", {"object_type": "apikey"}, None),
        ("workspace slug (staff)", {"workspace": "team-7"}, None),
        ("date range", {"since": month_ago, "until": today.isoformat()}, None),
    ]


def queryset(params):
    from audit.forms import AuditFilterForm
    from audit.models import AuditEvent

    params = dict(params)
    events = AuditEvent.objects.all()
    if "workspace_id" in params:
        events = events.filter(workspace_id=params.pop("workspace_id"))
    form = AuditFilterForm(params, site_wide=True)
    assert form.is_valid(), form.errors
    return form.filter(events).for_listing()


def time_queries(repeat):
    from django.db import connection

    print(f"\n{'query (a page of 50)':42} {'p50 ms':>8} {'p95 ms':>8}  plan")
    for name, params, page in cases():
        qs = queryset(params)
        start = ((page or 1) - 1) * 50
        timings = []
        for _ in range(repeat):
            t = time.perf_counter()
            list(qs[start : start + 51])
            timings.append((time.perf_counter() - t) * 1000)
        timings.sort()
        plan = qs[start : start + 51].explain()
        if connection.vendor == "postgresql":
            used = sorted({word.strip('"') for word in plan.split() if word.startswith("audit_event_")})
            uses = ", ".join(used) or "NO INDEX"
        else:
            uses = ", ".join(sorted({w for w in plan.split() if w.startswith("audit_event_")})) or "NO INDEX"
        p95 = timings[int(len(timings) * 0.95) - 1]
        print(f"{name:42} {statistics.median(timings):8.2f} {p95:8.2f}  {uses}")


def time_export():
    from audit.export import csv_lines

    qs = queryset({"since": "2000-01-01"})
    start = time.perf_counter()
    rows = sum(1 for _ in csv_lines(qs)) - 1
    elapsed = time.perf_counter() - start
    print(f"\nCSV export: {rows} rows in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s")


def time_prune(n):
    from django.utils import timezone

    from audit.management.commands.prune_audit import prune
    from audit.models import AuditEvent

    oldest = AuditEvent.objects.order_by("created_at").values_list("created_at", flat=True)[n // 10]
    days = (timezone.now() - oldest).days
    start = time.perf_counter()
    deleted, _cutoff = prune(days)
    print(f"prune_audit --days {days}: {deleted} events deleted in {time.perf_counter() - start:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/audit_bench")
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-prune", action="store_true", help="keep the table as it is (for repeated runs)")
    args = parser.parse_args()
    configure(args)
    fill(args.events)
    time_queries(args.repeat)
    time_export()
    if not args.no_prune:
        time_prune(args.events)


if __name__ == "__main__":
    main()
