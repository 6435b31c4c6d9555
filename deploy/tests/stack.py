"""Starts the production stack on loopback ports for the stack tests.

deploy/start_production.sh (preflight, collectstatic, migrate, gunicorn with
gevent workers, the task worker) against a throw-away PostgreSQL database
and Redis, and nginx from the rendered deploy/nginx.conf with a certificate
from deploy/make_self_signed_cert.sh, all under one temporary folder.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEPLOY = Path(__file__).resolve().parents[1]
ROOT = DEPLOY.parent
sys.path.insert(0, str(DEPLOY))

from render_nginx import render  # noqa: E402

from corporate.tests.ports import free_port  # noqa: E402  (the stack tests take it from here)

WEB_APPNAME = "corporate-web"
METRICS_TOKEN = "stack-metrics-token-0123456789"


def wait_for_port(port, timeout, process=None, what="server"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


class Stack:
    def __init__(self, tmp, postgres_url, redis_url, workers=1, pool_size=4, upload_max_mb=2):
        self.tmp = Path(tmp)
        self.workers = workers
        self.pool_size = pool_size
        self.upload_max_mb = upload_max_mb
        self.db_name = f"stack_{os.getpid()}_{secrets.token_hex(3)}"
        self.admin_url = postgres_url
        parts = urlsplit(postgres_url)
        self.database_url = urlunsplit(parts._replace(path="/" + self.db_name))
        self.redis_url = redis_url
        self.cache_prefix = f"stack-{self.db_name}"
        self.web_port, self.http_port, self.https_port = free_port(), free_port(), free_port()
        self.logs = self.tmp / "logs"
        self.static_root = self.tmp / "static"
        self.cert = self.tmp / "tls" / "cert.pem"
        self.key = self.tmp / "tls" / "key.pem"
        self.app = None
        self.nginx = None
        self._db_created = False

    # Addresses
    @property
    def https(self):
        return f"https://localhost:{self.https_port}"

    @property
    def http(self):
        return f"http://localhost:{self.http_port}"

    @property
    def direct(self):
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def max_body_mb(self):
        return self.upload_max_mb + 1

    # Lifecycle
    def start(self):
        self.logs.mkdir(parents=True)
        self._make_cert()
        self._create_database()
        self._start_app()
        self._start_nginx()
        return self

    def stop(self):
        for process in (self.nginx, self.app):
            if process is not None and process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in (self.nginx, self.app):
            if process is None:
                continue
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self._drop_database()
        self._clear_cache()

    def app_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
        env.update(
            ENVIRONMENT="production",
            DJANGO_SETTINGS_MODULE="deploy.tests.stack_settings",
            SECRET_KEY="stack-test-" + secrets.token_urlsafe(48),
            ALLOWED_HOSTS="localhost,127.0.0.1",
            CSRF_TRUSTED_ORIGINS=self.https,
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            CACHE_KEY_PREFIX=self.cache_prefix,
            VAR_DIR=str(self.tmp / "var"),
            STATIC_ROOT=str(self.static_root),
            MEDIA_ROOT=str(self.tmp / "media"),
            LOG_DIR=str(self.logs),
            BIND="127.0.0.1",
            PORT=str(self.web_port),
            WEB_WORKERS=str(self.workers),
            TASK_WORKERS="1",
            DB_POOL_SIZE=str(self.pool_size),
            UPLOAD_MAX_MB=str(self.upload_max_mb),
            PROXY_COUNT="1",
            ENV_FILE=str(self.tmp / "no.env"),
            METRICS_TOKEN=METRICS_TOKEN,
        )
        return env

    def shell(self, script):
        """Runs `manage.py shell -c script` against the stack's database; the last line it printed."""
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", script],
            cwd=ROOT,
            env=self.app_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def _make_cert(self):
        subprocess.run(
            ["bash", str(DEPLOY / "make_self_signed_cert.sh"), str(self.cert.parent), "localhost"],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def _admin(self, sql):
        import psycopg2

        conn = psycopg2.connect(self.admin_url, connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else None
        finally:
            conn.close()

    def _create_database(self):
        self._admin(f'CREATE DATABASE "{self.db_name}"')
        self._db_created = True

    def _drop_database(self):
        if self._db_created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self._db_created = False

    def _clear_cache(self):
        try:
            import redis

            client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
            keys = list(client.scan_iter(match=f"{self.cache_prefix}:*", count=500))
            if keys:
                client.delete(*keys)
        except Exception:  # a leftover cache key with a unique prefix harms nothing
            pass

    def web_connections(self):
        """Connections the web workers hold to this stack's database now."""
        rows = self._admin(
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE datname = '{self.db_name}' AND application_name = '{WEB_APPNAME}'"
        )
        return rows[0][0]

    def _start_app(self):
        log = open(self.logs / "start_production.log", "wb")  # noqa: SIM115 - kept open for the process
        self.app = subprocess.Popen(
            ["bash", str(DEPLOY / "start_production.sh"), "all"],
            cwd=ROOT,
            env=self.app_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(self.web_port, 90, self.app, "deploy/start_production.sh")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_tail()}") from None

    def _start_nginx(self):
        conf_dir = self.tmp / "nginx"
        conf_dir.mkdir()
        env = self.app_env()
        env.update(
            DOMAIN="localhost",
            TLS_CERT=str(self.cert),
            TLS_KEY=str(self.key),
            LISTEN_ADDRESS="127.0.0.1",
            HTTP_PORT=str(self.http_port),
            HTTPS_PORT=str(self.https_port),
            UPSTREAM=f"127.0.0.1:{self.web_port}",
        )
        (conf_dir / "site.conf").write_text(render(env))
        user = "user root root;\n" if os.geteuid() == 0 else ""
        temp = {name: conf_dir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        (conf_dir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {conf_dir / 'nginx.pid'};\n"
            f"error_log {self.logs / 'nginx-error.log'} warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            f"    access_log {self.logs / 'nginx-access.log'};\n"
            f"    client_body_temp_path {temp['body']};\n"
            f"    proxy_temp_path {temp['proxy']};\n"
            f"    fastcgi_temp_path {temp['fastcgi']};\n"
            f"    uwsgi_temp_path {temp['uwsgi']};\n"
            f"    scgi_temp_path {temp['scgi']};\n"
            f"    include {conf_dir / 'site.conf'};\n"
            "}\n"
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        check = subprocess.run(
            [
                nginx,
                "-t",
                "-p",
                str(conf_dir),
                "-e",
                str(self.logs / "nginx-error.log"),
                "-c",
                str(conf_dir / "nginx.conf"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        self.nginx = subprocess.Popen(
            [
                nginx,
                "-p",
                str(conf_dir),
                "-e",
                str(self.logs / "nginx-error.log"),
                "-c",
                str(conf_dir / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.logs / "nginx-stderr.log", "wb"),  # noqa: SIM115 - kept open for the process
            start_new_session=True,
        )
        wait_for_port(self.https_port, 15, self.nginx, "nginx")
        wait_for_port(self.http_port, 5, self.nginx, "nginx")

    def log_tail(self, lines=40):
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)
