import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.test import override_settings
from django.urls import reverse

from corporate.workers import record_heartbeat

ROOT = Path(__file__).resolve().parents[2]
DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        # Nothing listens on port 1: a real connection refusal.
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2, "IGNORE_EXCEPTIONS": True},
    }
}


def get_health_with_heartbeat(client, seconds_ago):
    """/health after a heartbeat `seconds_ago`, and the ages it may report (the request takes a moment)."""
    beat = time.time() - seconds_ago
    record_heartbeat(beat)
    before = time.time()
    response = client.get(reverse("health"))
    return response, range(int(before - beat), int(time.time() - beat) + 1)


def test_health_ok(client, db):
    response, ages = get_health_with_heartbeat(client, 0)
    assert response.status_code == 200
    body = response.json()
    assert body["worker"]["last_heartbeat_seconds"] in ages
    # Hybrid search, or lexical with a warning (documents/tests/test_vectors.py); never a failure.
    assert body.pop("search")["mode"] in {"hybrid", "lexical"}
    assert body == {
        "database": "ok",
        "cache": "ok",
        "worker": {"state": "ok", "last_heartbeat_seconds": body["worker"]["last_heartbeat_seconds"]},
        "status": "ok",
    }


def test_health_reports_unreachable_cache_and_stays_in_rotation(client, db):
    # The site serves without Redis: a load balancer must not take every web process out for it.
    with override_settings(CACHES={"default": DEAD_REDIS["default"], "workers": DEAD_REDIS["default"]}):
        response = client.get(reverse("health"))
    assert response.status_code == 200
    body = response.json()
    body.pop("search")
    assert body == {
        "database": "ok",
        "cache": "unavailable",
        "worker": {"state": "unknown"},
        "status": "degraded",
        "failed": ["cache"],
    }


def test_health_reports_how_long_ago_the_workers_sent_a_heartbeat(client, db, settings):
    settings.TASK_WORKER_HEARTBEAT_SECONDS = 5
    response, ages = get_health_with_heartbeat(client, 12)
    assert response.status_code == 200
    assert response.json()["worker"]["state"] == "ok"
    assert response.json()["worker"]["last_heartbeat_seconds"] in ages


def test_stale_workers_are_reported_without_failing_health(client, db, settings):
    # Three missed beats make the workers stale; the web tier still serves, so 200.
    settings.TASK_WORKER_HEARTBEAT_SECONDS = 5
    response, ages = get_health_with_heartbeat(client, 16)
    assert response.status_code == 200
    assert response.json()["worker"]["state"] == "stale"
    assert response.json()["worker"]["last_heartbeat_seconds"] in ages
    assert response.json()["status"] == "ok"


def test_health_says_when_no_worker_ever_reported(client, db):
    response = client.get(reverse("health"))
    assert response.status_code == 200
    assert response.json()["worker"] == {"state": "never"}


def test_health_reads_the_heartbeat_with_one_cache_read_and_one_query(client, db, django_assert_num_queries):
    record_heartbeat()
    # 1: SELECT 1 (the database check); the heartbeat comes from the cache.
    with django_assert_num_queries(1):
        assert client.get(reverse("health")).json()["worker"]["state"] == "ok"


def test_health_reports_unreachable_database():
    script = (
        "import json; from django.test import Client; r = Client().get('/health'); "
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/nothing"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert outcome["body"]["database"] == "unavailable"
    assert outcome["body"]["failed"] == ["database"]


def test_a_redis_that_refuses_writes_is_an_unavailable_cache(client, db, redis_cache):
    """Out of memory (maxmemory with noeviction): Redis answers PING and refuses every write."""
    assert client.get(reverse("health")).json()["cache"] == "ok"
    redis_cache.client().config_set("maxmemory", 1)
    redis_cache.client().config_set("maxmemory-policy", "noeviction")
    try:
        body = client.get(reverse("health")).json()
    finally:
        redis_cache.client().config_set("maxmemory", 0)
    assert (body["cache"], body["status"], body["failed"]) == ("unavailable", "degraded", ["cache"])
