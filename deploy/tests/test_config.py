"""The deployment files on their own: gunicorn config, nginx template, start script."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1]
ROOT = DEPLOY.parent
sys.path.insert(0, str(DEPLOY))

from render_nginx import ConfigError, render  # noqa: E402

SITE = {"DOMAIN": "ai.example.com", "TLS_CERT": "/etc/ssl/ai.crt", "TLS_KEY": "/etc/ssl/ai.key"}


def load_gunicorn_config(**env):
    """Evaluate deploy/gunicorn.conf.py in a fresh interpreter; its settings and the modules it imported."""
    code = (
        "import json, runpy, sys; cfg = runpy.run_path('deploy/gunicorn.conf.py'); "
        "print(json.dumps({'cfg': {k: v for k, v in cfg.items() if isinstance(v, (int, str, bool))}, "
        "'modules': sorted(m for m in ('django', 'psycopg2', 'redis', 'gevent') if m in sys.modules)}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WEB_")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout)


def test_gunicorn_config_defaults_and_imports_nothing_that_opens_sockets():
    loaded = load_gunicorn_config()
    cfg = loaded["cfg"]
    assert cfg["worker_class"] == "deploy.gunicorn_worker.Worker"
    assert cfg["workers"] == os.cpu_count() * 2 + 1
    assert cfg["timeout"] > 120  # longer than a model call
    assert cfg["max_requests"] > 0 and cfg["max_requests_jitter"] > 0
    assert cfg["preload_app"] is False
    assert cfg["accesslog"] == "-" and "%(M)s" in cfg["access_log_format"]
    # Monkey-patching happens in the worker, before the app (and these) are imported.
    assert loaded["modules"] == []


def test_gunicorn_config_from_the_environment(tmp_path):
    cfg = load_gunicorn_config(WEB_WORKERS="3", WEB_TIMEOUT="200", LOG_DIR=str(tmp_path), PORT="9001")["cfg"]
    assert cfg["workers"] == 3 and cfg["timeout"] == 200 and cfg["bind"] == "127.0.0.1:9001"
    assert cfg["accesslog"] == str(tmp_path / "access.log")


def test_worker_class_makes_psycopg2_cooperative_after_patching():
    code = (
        "from deploy.gunicorn_worker import Worker; import psycopg2.extensions as e; "
        "w = Worker.__new__(Worker); w.sockets = []; w.patch(); "
        "from gevent import monkey; print(monkey.is_module_patched('socket'), e.get_wait_callback() is not None)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_nginx_template_renders_every_parameter():
    text = render({**SITE, "UPLOAD_MAX_MB": "20", "WEB_TIMEOUT": "150", "WEB_KEEPALIVE": "5"})
    assert "${" not in text
    assert "listen 0.0.0.0:443 ssl http2;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "client_max_body_size 21m;" in text
    assert "proxy_read_timeout 150s;" in text
    assert "keepalive_timeout 4s;" in text
    assert "return 301 https://$host$request_uri;" in text
    assert "server_name ai.example.com;" in text
    assert 'add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;' in text


def test_nginx_hsts_follows_djangos_settings():
    text = render({**SITE, "SECURE_HSTS_SECONDS": "600", "SECURE_HSTS_PRELOAD": "true"})
    assert 'Strict-Transport-Security "max-age=600; includeSubDomains; preload"' in text


def test_nginx_template_on_other_ports_keeps_the_port_in_redirects_and_host():
    text = render({**SITE, "HTTPS_PORT": "8443", "HTTP_PORT": "8080"})
    assert "return 301 https://$host:8443$request_uri;" in text
    assert "proxy_set_header X-Forwarded-Host $host:8443;" in text


@pytest.mark.parametrize(
    "env, message",
    [
        ({"TLS_CERT": "/a", "TLS_KEY": "/b"}, "DOMAIN must be set"),
        ({**SITE, "DOMAIN": "ai.example.com; include /etc/passwd"}, "cannot go into nginx.conf"),
        ({**SITE, "UPLOAD_MAX_MB": "lots"}, "UPLOAD_MAX_MB must be a whole number"),
    ],
)
def test_nginx_template_refuses_bad_parameters(env, message):
    with pytest.raises(ConfigError, match=message):
        render(env)


def run_start(*args, **env):
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "ENV_FILE": "/nonexistent"}
    return subprocess.run(
        ["bash", str(DEPLOY / "start_production.sh"), *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_script_names_the_missing_settings():
    result = run_start(ALLOWED_HOSTS="ai.example.com")
    assert result.returncode == 1
    assert "set SECRET_KEY DATABASE_URL REDIS_URL" in result.stderr


def test_start_script_refuses_development_and_unknown_modes():
    assert "this script starts production" in run_start(ENVIRONMENT="development").stderr
    assert "unknown mode 'serve'" in run_start("serve").stderr


def test_start_script_preflight_reports_an_unreachable_database(tmp_path):
    result = run_start(
        "prepare",
        SECRET_KEY="a-long-random-production-secret-" + "0123456789" * 4,
        ALLOWED_HOSTS="ai.example.com",
        DATABASE_URL="postgres://nobody@127.0.0.1:1/nothing",
        REDIS_URL="redis://127.0.0.1:1/0",
        VAR_DIR=str(tmp_path),
        DB_CONNECT_TIMEOUT="1",
    )
    assert result.returncode == 1
    assert "preflight: PostgreSQL 127.0.0.1:1/nothing" in result.stderr
    assert "preflight: Redis 127.0.0.1:1/0: Error 111 connecting" in result.stderr
    assert "security." not in result.stderr  # the settings themselves are fine
    assert "Traceback" not in result.stderr


def test_self_signed_certificate_covers_the_names(tmp_path):
    subprocess.run(
        ["bash", str(DEPLOY / "make_self_signed_cert.sh"), str(tmp_path), "ai.test"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    text = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:ai.test" in text and "IP Address:127.0.0.1" in text
    assert oct((tmp_path / "key.pem").stat().st_mode)[-3:] == "600"


def test_systemd_units_are_valid(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        target = tmp_path / unit.name
        target.write_text(unit.read_text().replace("/srv/corporate", str(ROOT)))
        units.append(str(target))
    result = subprocess.run(
        [analyze, "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    assert "start_production.sh web" in (DEPLOY / "systemd" / "corporate-web.service").read_text()
    assert "start_production.sh worker" in (DEPLOY / "systemd" / "corporate-worker@.service").read_text()


def test_a_leaving_worker_runs_the_work_its_last_responses_handed_over_and_logs_a_failure(monkeypatch):
    import runpy

    from llmgateway.cache import deferred

    class Log:
        def __init__(self):
            self.lines = []

        def warning(self, message, *args):
            self.lines.append(message % args)

        info = warning

    server, worker = type("Server", (), {"log": Log()})(), type("Worker", (), {"pid": 7})()
    hooks = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
    ran = []
    monkeypatch.setattr(deferred, "drain", lambda: ran.append("drain"))
    hooks["worker_exit"](server, worker)
    assert ran == ["drain"]

    def broken():
        raise ConnectionError("Redis is gone")

    monkeypatch.setattr(deferred, "drain", broken)
    hooks["worker_exit"](server, worker)
    assert "worker 7: writing the last responses' work failed: Redis is gone" in server.log.lines
    assert server.log.lines[-1] == "worker 7 exited"
