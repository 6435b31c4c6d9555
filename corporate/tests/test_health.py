import json
import os
import subprocess
import sys
from pathlib import Path

from django.test import override_settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        # Nothing listens on port 1: a real connection refusal.
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2, "IGNORE_EXCEPTIONS": True},
    }
}


def test_health_ok(client, db):
    response = client.get(reverse("health"))
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "cache": "ok", "status": "ok"}


def test_health_reports_unreachable_cache(client, db):
    with override_settings(CACHES=DEAD_REDIS):
        response = client.get(reverse("health"))
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "cache": "unavailable", "status": "degraded", "failed": ["cache"]}


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
