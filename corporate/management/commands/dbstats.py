"""Print what the System page shows: health, connection pools, slowest queries, caches, the last hour."""

from django.core.management.base import BaseCommand

from corporate.observability.system import POOL_FIELDS, snapshot

SPARK = " ▁▂▃▄▅▆▇█"


def sparkline(values):
    top = max(values) if values and max(values) > 0 else 1
    return "".join(SPARK[min(8, round(v / top * 8))] if v else SPARK[0] for v in values)


def report(data):
    lines = ["Health"]
    for check in data["checks"]:
        lines.append(f"  {check.state:<8} {check.name:<24} {check.detail}")
    hour = data["hour"]
    lines.append("")
    lines.append(f"The last hour: {hour['requests']} requests, {hour['errors']} server errors")
    if hour["requests"]:
        lines.append(
            f"  per request: {hour['server_ms']:.1f} ms server time, {hour['db_ms']:.1f} ms in the database, "
            f"{hour['queries']:.1f} queries"
        )
    for chart in data["charts"]:
        lines.append(f"  {chart.title + ' (' + chart.unit + ')':<42} {sparkline(chart.values)} {chart.latest}")
    lines.append("")
    lines.append("Database connections (pools of the web workers)")
    if data["pools"]:
        lines.append("  " + " ".join(f"{name:>12}" for name in ("worker", *POOL_FIELDS)))
        for pid, stats in data["pools"]:
            lines.append("  " + " ".join(f"{value:>12}" for value in (pid, *(stats[f] for f in POOL_FIELDS))))
        total = data["pool_total"]
        lines.append("  " + " ".join(f"{value:>12}" for value in ("all", *(total[f] for f in POOL_FIELDS))))
    else:
        lines.append("  none reported in the last minute (pools run in gunicorn's gevent workers on PostgreSQL)")
    lines.append("")
    lines.append(f"Slowest queries of the last hour (at least {data['slow_ms']} ms)")
    if not data["slowest"]:
        lines.append("  none")
    for q in data["slowest"]:
        lines.append(f"  {q['max_ms']:8.0f} ms  x{q['count']:<4} mean {q['mean_ms']:.0f} ms  from {q['origin']}")
        lines.append(f"              {q['sql'][:300]}")
    rates = data["rates"]
    lines.append("")
    lines.append("Caches")

    def pct(rate):
        return "-" if rate is None else f"{rate * 100:.0f}%"

    lines.append(
        f"  completion cache: {pct(rates['completion_hour'])} from cache in the last hour, "
        f"{pct(rates['completion_total'])} of {rates['completion_requests']} since its statistics began"
    )
    lines.append(f"  page data: {pct(rates['page_hour'])} of {rates['page_lookups']} lookups in the last hour")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Print the health, connection pools, slowest queries, cache hit rates and last hour of the site."

    def handle(self, *args, **options):
        self.stdout.write(report(snapshot()))
