"""Starting the project with a bad environment stops with one clear line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, **env):
    full_env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must start with postgres://"),
        ({"DATABASE_URL": "postgres://u@h:badport/db"}, "DATABASE_URL is not a valid database URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
        ({"ENVIRONMENT": "production", "ALLOWED_HOSTS": "x.example"}, "SECRET_KEY must be set"),
        ({"DEBUG": "perhaps"}, "DEBUG must be true or false"),
        ({"DB_SLOW_QUERY_MS": "fast"}, "DB_SLOW_QUERY_MS must be a whole number"),
        ({"DB_SLOW_QUERY_MS": "-1"}, "DB_SLOW_QUERY_MS must be at least 0"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16 characters"),
        ({"METRICS_TOKEN": "a token with spaces in it"}, "METRICS_TOKEN must be at least 16 characters"),
        ({"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/prometheus"}, "PROMETHEUS_MULTIPROC_DIR must be a writable"),
        ({"USAGE_LIMITS_WITHOUT_STORE": "maybe"}, "USAGE_LIMITS_WITHOUT_STORE must be admit or refuse"),
    ],
)
def test_bad_environment_is_one_line(env, expected):
    result = run_manage("check", **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Configuration error: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        ENVIRONMENT="production",
        SECRET_KEY="a-long-random-production-secret-" + "x" * 40,
        ALLOWED_HOSTS="ai.example.com",
        CSRF_TRUSTED_ORIGINS="https://ai.example.com",
        VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_dev_secret_key_is_generated_once(tmp_path):
    for _ in range(2):
        result = run_manage(
            "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", VAR_DIR=str(tmp_path)
        )
        assert result.returncode == 0, result.stderr
    key = (tmp_path / "secret_key").read_text().strip()
    assert len(key) > 40
    assert result.stdout.strip().splitlines()[-1] == key
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"
