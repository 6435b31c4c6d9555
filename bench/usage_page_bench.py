"""The Usage page's queries over 1,000,000 usage rows on PostgreSQL: server time and the plan.

    DATABASE_URL=postgres://... .venv/bin/python bench/usage_page_bench.py [--rows 1000000]

Fills the usage table of the database's first workspace with generated rows
spread over the last 90 days (once: rows it made before are kept and
counted), then times what the page runs for the last 30 days (totals, the
daily series, the four breakdowns) and prints the plan of the series query.
Remove the rows with --clean.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")

FILL = """
INSERT INTO llmgateway_usagerecord
  (request_id, workspace_id, user_id, api_key_id, assistant_id, origin, model, prompt_tokens,
   completion_tokens, cost, cache, status, latency_ms, created_at)
SELECT md5('bench' || n)::uuid, %(ws)s, NULL, NULL, (n %% 7) + 1, 'bench', 'model-' || (n %% 5),
       100 + n %% 50, 40 + n %% 30, 0.0001 * (n %% 20), CASE WHEN n %% 3 = 0 THEN 'hit' ELSE 'miss' END,
       200, 12.5, now() - (n %% 7776000) * interval '7.776 seconds'
FROM generate_series(%(start)s, %(end)s) AS n
ON CONFLICT (request_id) DO NOTHING
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clean", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()
    from django.db import connection

    from llmgateway.metering import reports
    from llmgateway.models import UsageRecord
    from workspaces.models import Workspace

    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    workspace = Workspace.objects.first()
    if args.clean:
        print("deleted", UsageRecord.objects.filter(origin="bench").delete()[0])
        return
    have = UsageRecord.objects.filter(workspace=workspace).count()
    if have < args.rows:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for start in range(have, args.rows, 200_000):
                end = min(start + 200_000, args.rows) - 1
                cursor.execute(FILL, {"ws": workspace.pk, "start": start, "end": end})
            cursor.execute("ANALYZE llmgateway_usagerecord")
        print(f"generated {args.rows - have} rows in {time.perf_counter() - started:.0f} s")
    print(f"{UsageRecord.objects.filter(workspace=workspace).count()} rows in the workspace")
    rows = UsageRecord.objects.in_workspace(workspace).filter(created_at__gte=reports.date_range()[0])
    timings = {}
    for _ in range(3):
        for name, run in (
            ("totals", lambda: reports.totals(rows)),
            ("series (day)", lambda: reports.series(rows, "day")),
            *[(f"by {by}", lambda by=by: reports.breakdown(rows, by)) for by in ("user", "model", "key", "assistant")],
        ):
            started = time.perf_counter()
            run()
            timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    total = 0
    for name, values in timings.items():
        best = min(values)
        total += best
        print(f"{name:<16}{best:>8.1f} ms")
    print(f"{'all of the page':<16}{total:>8.1f} ms (best of 3 each, last 30 days)")
    from django.db.models.functions import TruncDay
    from django.utils import timezone

    query = rows.annotate(at=TruncDay("created_at", tzinfo=timezone.get_current_timezone())).values("at")
    query = query.annotate(**reports._aggregates()).order_by()
    print(query.explain(analyze=True))


if __name__ == "__main__":
    main()
