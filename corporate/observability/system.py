"""What the System page and `manage.py dbstats` show: health, pools, slow queries, caches, the last hour."""

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from corporate.observability import queries, timeline

POOL_FIELDS = ("size", "in_use", "idle", "waiting", "waits", "wait_seconds", "timeouts", "opened", "closed", "broken")


@dataclass
class Check:
    name: str
    state: str  # ok | warning | failed | off
    detail: str


@dataclass
class Chart:
    title: str
    unit: str
    values: list
    latest: str = ""
    points: str = ""
    bars: list = field(default_factory=list)


def _timed(check):
    started = time.perf_counter()
    check()
    return (time.perf_counter() - started) * 1000


def health():
    from corporate import views
    from corporate.workers import worker_state

    checks = []
    try:
        ms = _timed(views._check_database)
        checks.append(Check("Database", "ok", f"{connection.vendor}, answered in {ms:.1f} ms"))
    except Exception as exc:
        checks.append(Check("Database", "failed", f"{exc.__class__.__name__}: does not answer"))
    if settings.REDIS_URL:
        try:
            ms = _timed(views._check_cache)
            checks.append(Check("Redis", "ok", f"answered in {ms:.1f} ms"))
        except Exception as exc:
            checks.append(Check("Redis", "failed", f"{exc.__class__.__name__}: does not answer"))
    else:
        checks.append(Check("Redis", "off", "not configured: local-memory cache (REDIS_URL)"))
    try:
        worker = worker_state()
    except Exception:
        worker = {"state": "unknown"}
    if worker["state"] == "ok":
        checks.append(Check("Task workers", "ok", f"last heartbeat {worker['last_heartbeat_seconds']} s ago"))
    elif worker["state"] == "stale":
        checks.append(
            Check("Task workers", "failed", f"last heartbeat {worker['last_heartbeat_seconds']} s ago (stale)")
        )
    else:
        checks.append(Check("Task workers", "warning", "no heartbeat has come"))
    checks.append(_queue_check())
    try:
        checks.extend(_upstream_checks())
    except Exception as exc:
        checks.append(Check("Models", "failed", f"{exc.__class__.__name__}: the model list is unreadable"))
    return checks


def queue():
    """(tasks waiting, seconds the oldest has waited or None)."""
    from django.db.models import Count, Min
    from django_tasks_db.models import DBTaskResult

    row = DBTaskResult.objects.filter(status="READY").aggregate(n=Count("pk"), oldest=Min("enqueued_at"))
    oldest = row["oldest"]
    age = None
    if oldest is not None:
        from django.utils import timezone

        age = max(0, int((timezone.now() - oldest).total_seconds()))
    return row["n"], age


def _queue_check():
    try:
        depth, age = queue()
    except Exception as exc:
        return Check("Task queue", "failed", f"{exc.__class__.__name__}: unreadable")
    if not depth:
        return Check("Task queue", "ok", "empty")
    state = "warning" if age is not None and age > 300 else "ok"
    return Check("Task queue", state, f"{depth} waiting, the oldest for {age} s")


def _upstream_checks():
    from llmgateway.models import ModelConfig
    from llmgateway.providers.resilience import breaker

    seen = timeline.upstream()
    checks = []
    for config in ModelConfig.objects.filter(enabled=True).order_by("name"):
        last = seen.get(config.name, {})
        where = config.provider
        if breaker.is_open(config.name):
            checks.append(Check(f"Model {config.name}", "failed", f"{where}: failing, skipped for now"))
        elif last.get("error_at", 0) > last.get("ok_at", 0):
            ago = int(time.time() - last["error_at"])
            checks.append(Check(f"Model {config.name}", "warning", f"{where}: last call failed {ago} s ago"))
        elif "ok_at" in last:
            ago = int(time.time() - last["ok_at"])
            checks.append(
                Check(f"Model {config.name}", "ok", f"{where}: answered {ago} s ago in {last['latency_ms']:.0f} ms")
            )
        else:
            checks.append(Check(f"Model {config.name}", "ok", f"{where}: not called recently"))
    return checks


def pools():
    """([(worker pid, stats)], summed stats or None): every web worker's PostgreSQL pool."""
    timeline.flush()
    per_worker = []
    for pid, stats_list in sorted(timeline.worker_pools().items()):
        for stats in stats_list:
            per_worker.append((pid, stats))
    if not per_worker:
        return [], None
    summed = {name: sum(stats[name] for _, stats in per_worker) for name in POOL_FIELDS}
    summed["wait_seconds"] = round(summed["wait_seconds"], 3)
    return per_worker, summed


def cache_rates(minutes):
    """Hit rates over the last hour: the completion cache and the page-data cache."""
    from llmgateway.cache import stats

    def rate(hits, misses):
        return hits / (hits + misses) if hits + misses else None

    hour = {f: sum(m[f] for m in minutes) for f in timeline.FIELDS}
    try:
        overall = stats.summary()
    except Exception:
        overall = {}
    return {
        "completion_hour": rate(hour["cache_hit"] + hour["cache_coalesced"], hour["cache_miss"]),
        "completion_total": overall.get("served_without_upstream_rate"),
        "completion_requests": overall.get("requests", 0),
        "page_hour": rate(hour["page_cache_hit"], hour["page_cache_miss"]),
        "page_lookups": hour["page_cache_hit"] + hour["page_cache_miss"],
    }


def _chart(title, unit, values, fmt):
    width, height = 240, 48
    top = max(values) if values and max(values) > 0 else 1
    step = width / max(1, len(values))
    bars = []
    for i, value in enumerate(values):
        h = 0 if value is None else max(1 if value else 0, round(value / top * (height - 4), 1))
        bars.append({"x": round(i * step, 1), "y": round(height - h, 1), "w": round(max(step - 1, 1), 1), "h": h})
    latest = next((v for v in reversed(values) if v), 0)
    return Chart(title, unit, values, fmt(latest), bars=bars)


def charts(minutes):
    def per_request(m, f):
        return m[f] / m["requests"] if m["requests"] else 0

    def hit_rate(m):
        looked = m["cache_hit"] + m["cache_coalesced"] + m["cache_miss"]
        return 100 * (m["cache_hit"] + m["cache_coalesced"]) / looked if looked else 0

    return [
        _chart("Requests", "per minute", [m["requests"] for m in minutes], lambda v: f"{v:.0f}"),
        _chart("Server time", "ms per request", [per_request(m, "server_ms") for m in minutes], lambda v: f"{v:.1f}"),
        _chart("Database time", "ms per request", [per_request(m, "db_ms") for m in minutes], lambda v: f"{v:.1f}"),
        _chart("Queries", "per request", [per_request(m, "queries") for m in minutes], lambda v: f"{v:.1f}"),
        _chart("Slow queries", "per minute", [m["slow_queries"] for m in minutes], lambda v: f"{v:.0f}"),
        _chart("Completion cache", "% answered from cache", [hit_rate(m) for m in minutes], lambda v: f"{v:.0f}%"),
        _chart("Server errors", "5xx per minute", [m["errors"] for m in minutes], lambda v: f"{v:.0f}"),
    ]


def snapshot():
    minutes = timeline.minutes(60)
    per_worker, summed = pools()
    hour = {f: sum(m[f] for m in minutes) for f in timeline.FIELDS}
    return {
        "checks": health(),
        "pools": per_worker,
        "pool_total": summed,
        "slowest": queries.slowest()[:10],
        "slow_ms": settings.DB_SLOW_QUERY_MS,
        "rates": cache_rates(minutes),
        "charts": charts(minutes),
        "hour": {
            "requests": hour["requests"],
            "errors": hour["errors"],
            "db_ms": hour["db_ms"] / hour["requests"] if hour["requests"] else None,
            "server_ms": hour["server_ms"] / hour["requests"] if hour["requests"] else None,
            "queries": hour["queries"] / hour["requests"] if hour["requests"] else None,
        },
    }
