"""The Usage page over 1,000,000 usage records on PostgreSQL: server time and the plans.

    createdb -h 127.0.0.1 -U postgres usage_bench      # once: a database of its own, kept
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/usage_bench .venv/bin/python bench/usage_page_bench.py

The first run migrates the database, adds a workspace "usage-bench" and its
owner, fills its usage records with generated rows spread over the last 30
days and adds them up into the hourly and daily totals (`manage.py
rebuild_usage_totals`, timed): about a minute on a quiet machine. Later runs
reuse the rows (the fill is kept: only missing rows are added, and rows that
have aged out of the 30 days are moved back into them with --refresh). Then times what the page runs for the last 30
days (totals, the daily series, the four breakdowns; the hourly series), the
whole page as its admin gets it (server time: Django's test client, template
included), a page of the records list with its count, and prints the plans
of the daily series, a breakdown and the hourly series. Remove the rows with
--clean.
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
       200, 12.5, now() - (n %% 1000000) * interval '2.592 seconds'
FROM generate_series(%(start)s, %(end)s) AS n
ON CONFLICT (request_id) DO NOTHING
"""


def best_of(run, times=3, clock=time.perf_counter):
    spent = []
    for _ in range(times):
        started = clock()
        run()
        spent.append((clock() - started) * 1000)
    return min(spent)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clean", action="store_true", help="remove the generated rows")
    parser.add_argument("--refresh", action="store_true", help="move kept rows back into the last 30 days")
    args = parser.parse_args()
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from llmgateway.metering import reports, totals
    from llmgateway.models import UsageDay, UsageHour, UsageRecord
    from workspaces.models import Membership, Workspace

    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not (settings.STATIC_ROOT / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)  # pages name hashed static files
    workspace = Workspace.objects.filter(slug="usage-bench").first() or Workspace.objects.first()
    if workspace is None:
        owner, _ = get_user_model().objects.get_or_create(email="usage-bench@example.com")
        workspace = Workspace.objects.create(slug="usage-bench", name="Usage bench", created_by=owner)
        Membership.objects.create(workspace=workspace, user=owner, role="owner")
    if args.refresh:
        # Rows keep their times: a fill made days ago has aged partly out of the page's 30 days.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE llmgateway_usagerecord SET created_at = now() - (('x' || substr(request_id::text, 1, 8))::bit(32)::int"
                " & 1048575) %% 1000000 * interval '2.592 seconds' WHERE workspace_id = %s AND origin = 'bench'",
                [workspace.pk],
            )
        UsageHour.objects.in_workspace(workspace).delete()
        UsageDay.objects.in_workspace(workspace).delete()
        started = time.perf_counter()
        hours, days = totals.rebuild(workspace)
        print(
            f"moved the rows into the last 30 days; {hours} hourly and {days} daily rows in {time.perf_counter() - started:.0f} s"
        )
    if args.clean:
        print("deleted", UsageRecord.objects.filter(origin="bench").delete()[0], "records")
        UsageHour.objects.in_workspace(workspace).delete()
        UsageDay.objects.in_workspace(workspace).delete()
        print("totals rebuilt from the records left:", totals.rebuild(workspace))
        return
    have = UsageRecord.objects.filter(workspace=workspace).count()
    if have < args.rows:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for start in range(have, args.rows, 200_000):
                end = min(start + 200_000, args.rows) - 1
                cursor.execute(FILL, {"ws": workspace.pk, "start": start, "end": end})
            cursor.execute("ANALYZE llmgateway_usagerecord")
        print(f"generated {args.rows - have} records in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        hours, days = totals.rebuild(workspace)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE llmgateway_usagehour")
            cursor.execute("ANALYZE llmgateway_usageday")
        print(f"added them up into {hours} hourly and {days} daily rows in {time.perf_counter() - started:.0f} s")
    print(f"{UsageRecord.objects.filter(workspace=workspace).count()} records in the workspace")
    usage = reports.usage_for(None, workspace)
    timings = {
        "totals": best_of(lambda: reports.totals(usage)),
        "series (day)": best_of(lambda: reports.series(usage, "day")),
        **{
            f"by {by}": best_of(lambda by=by: reports.breakdown(usage, by))
            for by in ("user", "model", "key", "assistant")
        },
    }
    for name, value in timings.items():
        print(f"{name:<22}{value:>8.1f} ms")
    print(f"{'the six together':<22}{sum(timings.values()):>8.1f} ms (best of 3 each, last 30 days)")
    print(f"{'series (hour)':<22}{best_of(lambda: reports.series(usage, 'hour')):>8.1f} ms")

    setup_test_environment()  # the test client's own settings (ALLOWED_HOSTS), no test database
    admin = Membership.objects.filter(workspace=workspace, role__in=["owner", "admin"]).first().user
    client = Client()
    client.force_login(admin)
    counted = []

    def count(execute, sql, params, many, context):
        counted.append(sql)
        return execute(sql, params, many, context)

    for url in (f"/gateway/{workspace.slug}/usage/", f"/gateway/{workspace.slug}/usage/?bucket=hour"):
        assert client.get(url).status_code == 200
        counted.clear()
        with connection.execute_wrapper(count):
            client.get(url)
        spent = best_of(lambda url=url: client.get(url), times=5)
        # The web process's own CPU (template, forms, charts, Python side of the queries): steadier under load.
        cpu = best_of(lambda url=url: client.get(url), times=5, clock=time.process_time)
        print(f"{'page ' + url:<48}{spent:>8.1f} ms server time ({cpu:.1f} ms CPU), {len(counted)} queries")
    csv_url = f"/gateway/{workspace.slug}/usage.csv?by=model"
    print(f"{'CSV by model':<40}{best_of(lambda: client.get(csv_url)):>8.1f} ms")
    api = f"/api/gateway/{workspace.slug}/usage/"
    assert client.get(api).status_code == 200
    print(f"{'records list, first page + count':<40}{best_of(lambda: client.get(api)):>8.1f} ms")
    nxt = client.get(api).json()["next"]
    print(f"{'records list, next page':<40}{best_of(lambda: client.get(nxt)):>8.1f} ms")

    from django.db.models import F

    print("\nplan of the daily series:")
    print(usage.days.values("day").annotate(**reports._aggregates()).order_by().explain(analyze=True))
    print("\nplan of a breakdown (by model):")
    grouped = usage.days.annotate(group=F("model")).values("group").annotate(**reports._aggregates())
    print(grouped.order_by("-all_requests", "group").explain(analyze=True))
    print("\nplan of the hourly series:")
    print(usage.hours.values("hour").annotate(**reports._aggregates()).order_by().explain(analyze=True))
    print("\nplan of a page of records:")
    print(usage.records.order_by("-created_at", "-id")[:51].explain(analyze=True))


if __name__ == "__main__":
    main()
