"""The production stack, started for real: nginx (TLS, HTTP/2) -> gunicorn (gevent) -> PostgreSQL, Redis.

One stack serves the whole module (one gunicorn worker, DB_POOL_SIZE=4,
UPLOAD_MAX_MB=2). Skips where nginx is missing; under CI=true that fails.
"""

import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import httpx
import pytest

from conftest import require_service
from deploy.tests.stack import METRICS_TOKEN, Stack

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_url, redis_url):
    for tool, package in (("nginx", "nginx-light"), ("curl", "curl"), ("openssl", "openssl")):
        if not (shutil.which(tool) or shutil.which(f"/usr/sbin/{tool}")):
            require_service(tool, f"`{tool}` is not installed (apt-get install {package})")
    running = Stack(tmp_path_factory.mktemp("stack"), postgres_url, redis_url, workers=1, pool_size=4)
    try:
        running.start()
        yield running
    except BaseException:
        print(running.log_tail())
        raise
    finally:
        running.stop()


@pytest.fixture(scope="module")
def https(stack):
    trust = ssl.create_default_context(cafile=str(stack.cert))
    with httpx.Client(base_url=stack.https, verify=trust, timeout=10) as client:
        yield client


def direct_get(stack, path, timeout=10):
    """A request straight to gunicorn, as nginx would forward it."""
    conn = HTTPConnection("127.0.0.1", stack.web_port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": "localhost", "X-Forwarded-Proto": "https"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def curl(stack, *args, timeout=20):
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(stack.cert), *args], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_https_answers_with_http2(stack):
    out = curl(stack, "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", f"{stack.https}/health")
    assert out == "2 200"


def test_tls_1_2_and_1_3_with_hsts(stack, https):
    for version in ("1.2", "1.3"):
        out = curl(
            stack,
            f"--tlsv{version}",
            "--tls-max",
            version,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"{stack.https}/health",
        )
        assert out == "200", version
    response = https.get("/health")
    assert response.json()["status"] == "ok"
    # One HSTS header (nginx's); Django's own is hidden behind the proxy.
    assert response.headers.get_list("strict-transport-security") == ["max-age=31536000; includeSubDomains"]
    assert "default-src 'self'" in https.get("/accounts/login/").headers["content-security-policy"]


def test_http_redirects_to_https(stack):
    response = httpx.get(f"{stack.http}/workspaces/?page=2", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == f"{stack.https}/workspaces/?page=2"


def test_worker_runs_gevent_with_cooperative_psycopg2(stack):
    status, body = direct_get(stack, "/_stack/runtime")
    runtime = json.loads(body)
    assert status == 200
    assert runtime["socket_patched"] and runtime["psycopg2_wait_callback"]


def test_sign_in_form_posts_through_the_proxy(stack, https):
    """X-Forwarded-Proto/Host reach Django: the CSRF origin check passes over HTTPS."""
    page = https.get("/accounts/login/")
    assert page.status_code == 200
    assert "secure" in page.headers["set-cookie"].lower()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = https.post(
        "/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": "nobody@example.com", "password": "wrong password"},
        headers={"Origin": stack.https, "Referer": f"{stack.https}/accounts/login/"},
    )
    # The form again with an error; a failed CSRF check would be a 403.
    assert response.status_code == 200, response.text[:500]
    assert 'name="password"' in response.text


def test_static_files_come_from_nginx_with_long_cache(stack, https):
    manifest = json.loads((stack.static_root / "staticfiles.json").read_text())["paths"]
    hashed = "/static/" + manifest["css/app.css"]
    response = https.get(hashed, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"  # WhiteNoise's .gz, sent by gzip_static
    assert "text/css" in response.headers["content-type"]
    plain = https.get("/static/css/app.css")
    assert plain.headers["cache-control"] == "public, max-age=3600"
    # nginx answered: gunicorn never saw these requests.
    access_log = (stack.logs / "access.log").read_text()
    assert "/health" in access_log
    assert "/static/" not in access_log


@pytest.mark.parametrize("path", ["/_stack/stream", "/v1/_stack/stream"])
def test_streamed_response_arrives_in_pieces(stack, path):
    """Four events 0.4 s apart reach an HTTP/2 client as they are made, not at the end."""
    process = subprocess.Popen(
        ["curl", "-sS", "-N", "--http2", "--cacert", str(stack.cert), f"{stack.https}{path}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    arrivals = []
    started = time.monotonic()
    for line in process.stdout:
        if line.startswith("data:"):
            arrivals.append(time.monotonic() - started)
    assert process.wait(timeout=10) == 0
    assert len(arrivals) == 4
    # The first event arrives about 1.2 s before the last one is even made.
    assert arrivals[-1] - arrivals[0] > 0.9, arrivals


def test_upload_within_the_limit_passes_and_over_it_gets_a_readable_413(stack, https, tmp_path):
    within = b"x" * (stack.upload_max_mb * 1024 * 1024 - 4096)
    response = https.post("/_stack/upload", files={"file": ("within.bin", within)})
    assert response.status_code == 200, response.text[:300]
    assert response.json() == {"files": 1, "bytes": len(within)}

    over = b"x" * ((stack.max_body_mb + 1) * 1024 * 1024)
    response = https.post("/_stack/upload", files={"file": ("over.bin", over)})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "This upload is too large" in response.text
    assert "/static/css/app.css" in response.text  # styled like the site

    # Browsers use HTTP/2, where nginx checks the limit again on the error page.
    big = tmp_path / "over.bin"
    big.write_bytes(over)
    out = curl(
        stack, "--http2", "-F", f"file=@{big}", "-w", "\n%{http_code} %{http_version}", f"{stack.https}/_stack/upload"
    )
    page, status = out.rsplit("\n", 1)
    assert status == "413 2"
    assert "This upload is too large" in page


def test_an_over_large_v1_body_gets_a_json_413_in_openais_shape(stack, https, tmp_path):
    over = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * (stack.max_body_mb << 20) + b'"}]}'
    response = https.post("/v1/chat/completions", content=over, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "request_too_large"
    body = tmp_path / "over.json"
    body.write_bytes(over)
    out = curl(
        stack,
        "--http2",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        f"@{body}",
        "-w",
        "\n%{http_code} %{http_version}",
        f"{stack.https}/v1/chat/completions",
    )
    answer, status = out.rsplit("\n", 1)
    assert status == "413 2"
    assert json.loads(answer)["error"]["type"] == "invalid_request_error"


def test_with_the_app_down_apis_get_json_and_pages_the_styled_page(bare_nginx):
    """nginx in front of a port where nothing listens: its 502 is JSON under /v1/ and /api/, a page elsewhere."""
    trust = ssl.create_default_context(cafile=str(bare_nginx.cert))
    with httpx.Client(base_url=bare_nginx.https, verify=trust, timeout=10) as client:
        v1 = client.post("/v1/chat/completions", json={"model": "m", "messages": []})
        assert v1.status_code == 502 and v1.headers["content-type"].startswith("application/json")
        assert v1.json()["error"]["code"] == "service_unavailable"
        api = client.get("/api/documents/")
        assert api.status_code == 502 and api.json()["code"] == "service_unavailable"
        page = client.get("/")
        assert page.status_code == 502 and page.headers["content-type"].startswith("text/html")
        assert "/static/css/app.css" in page.text


def test_an_address_nginx_lets_through_is_read_by_gunicorn_and_answered_by_the_app(stack, https):
    """Between gunicorn's default request-line limit (4 kB) and nginx's (8 kB), the app answers, as JSON."""
    name = "m" * 6000
    response = https.get(f"/v1/models/{name}")
    assert response.status_code == 401, response.text[:200]
    assert response.json()["error"]["code"] == "invalid_api_key"
    response = https.get("/api/documents/", params={"q": name})
    assert response.status_code in (401, 403), response.text[:200]
    assert response.headers["content-type"].startswith("application/json")


@pytest.fixture(scope="module")
def bare_nginx(tmp_path_factory, postgres_url, redis_url):
    """nginx from deploy/nginx.conf in front of a port where nothing listens (what it answers itself)."""
    proxy = Stack(tmp_path_factory.mktemp("bare-nginx"), postgres_url, redis_url)
    proxy.logs.mkdir(parents=True)
    proxy._make_cert()
    try:
        proxy._start_nginx()
        yield proxy
    finally:
        proxy.stop()


def _raw_https(proxy, request):
    """Send `request` (bytes) over TLS as it is; (status line, headers, body) of the answer."""
    context = ssl.create_default_context(cafile=str(proxy.cert))
    plain = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=10)
    with plain, context.wrap_socket(plain, server_hostname="localhost") as tls:
        tls.sendall(request)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *headers = head.decode("latin-1").split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in headers)}, body


LONG = "a" * 20000


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/v1/models/" + LONG, 414, "uri_too_long"),
        ("/api/documents/?q=" + LONG, 414, "uri_too_long"),
        ("/v1/models", 431, "request_headers_too_large"),
        ("/api/documents/", 431, "request_headers_too_large"),
    ],
)
def test_requests_nginx_cannot_read_get_json_under_the_apis(bare_nginx, path, status, code):
    """A request line or headers over nginx's buffers: JSON in each API's error shape.

    (Over HTTP/2 nginx refuses such a request at the protocol level, with a stream reset and no answer.)
    """
    headers = ["-H", "X-Filler: " + "b" * 20000] if status == 431 else []
    out = curl(bare_nginx, "--http1.1", *headers, "-D", "-", "-w", "\n%{http_code}", f"{bare_nginx.https}{path}")
    answer, got = out.rsplit("\n", 1)
    head, _, body = answer.replace("\r\n", "\n").partition("\n\n")
    assert int(got) == status, answer[:300]
    assert "content-type: application/json" in head.lower()
    assert "strict-transport-security" in head.lower()
    error = json.loads(body)
    if path.startswith("/v1/"):
        assert error["error"]["code"] == code and error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"]
    else:
        assert error["code"] == code and error["detail"]


def test_malformed_requests_get_json_under_the_apis_and_a_page_elsewhere(bare_nginx):
    cases = [
        (b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n", "400", "v1", "bad_request"),
        (b"GET /api/documents/ HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n", "400", "api", "bad_request"),
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
            "501",
            "v1",
            "unsupported_transfer_encoding",
        ),
        (b"GET /v1/models HTTP/3.7\r\nHost: localhost\r\n\r\n", "505", "v1", "http_version_not_supported"),
        (b"GET / HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n", "400", "page", None),
        (("GET /" + LONG + " HTTP/1.1\r\nHost: localhost\r\n\r\n").encode(), "414", "page", None),
    ]
    for request, status, kind, code in cases:
        status_line, headers, body = _raw_https(bare_nginx, request)
        assert status_line.split()[1] == status, (request[:60], status_line)
        if kind == "page":
            assert headers["content-type"].startswith("text/html")
            assert b"This request could not be read" in body and b"/static/css/app.css" in body
            continue
        assert headers["content-type"] == "application/json", (request[:60], headers)
        error = json.loads(body)
        assert (error["error"]["code"] if kind == "v1" else error["code"]) == code


def test_slow_query_does_not_hold_up_other_requests(stack):
    """pg_sleep(3) in one request; /health in the same (only) worker answers while that query still runs."""
    slow = {}

    def sleeper():
        started = time.monotonic()
        slow["status"], slow["body"] = direct_get(stack, "/_stack/sleep?seconds=3", 60)
        slow["elapsed"] = time.monotonic() - started

    def sleeping():
        return stack._admin(
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE datname = '{stack.db_name}' AND state = 'active' AND query LIKE 'SELECT pg_sleep%'"
        )[0][0]

    thread = threading.Thread(target=sleeper)
    thread.start()
    # The slow query is running now (however long the request took to get there on a busy host).
    deadline = time.monotonic() + 30
    while not sleeping() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sleeping(), "the slow query never started"
    status, body = direct_get(stack, "/health")
    # Answered while the slow query still runs: the worker did not wait for it (no clock involved).
    still_sleeping = sleeping()
    thread.join(timeout=60)

    assert status == 200, body
    assert still_sleeping
    assert slow["status"] == 200 and slow["elapsed"] >= 3.0
    assert json.loads(slow["body"])["pid"] == json.loads(direct_get(stack, "/_stack/runtime")[1])["pid"]


def test_burst_of_200_requests_stays_within_the_connection_bound(stack):
    bound = stack.workers * stack.pool_size
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, stack.web_connections())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=200) as pool:
            statuses = list(pool.map(lambda _: direct_get(stack, "/_stack/sleep?seconds=0.05", 30)[0], range(200)))
    finally:
        done.set()
        sampler.join()

    assert statuses == [200] * 200
    assert 2 <= peak <= bound, f"peak {peak} connections, bound {bound}"
    assert stack.web_connections() <= bound
    pools = json.loads(direct_get(stack, "/_stack/runtime")[1])["pools"]
    assert pools and all(p["opened"] <= bound and p["in_use"] <= 1 for p in pools), pools
    # The same pool at /metrics, per worker (a `pid` label).
    conn = HTTPConnection("127.0.0.1", stack.web_port, timeout=10)
    conn.request("GET", "/metrics", headers={"Host": "localhost", "Authorization": f"Bearer {METRICS_TOKEN}"})
    text = conn.getresponse().read().decode()
    conn.close()
    [size] = [line for line in text.splitlines() if line.startswith("corporate_db_pool_size{")]
    assert 'pid="' in size and size.endswith(f" {float(stack.pool_size)}"), size
    [opened] = [line for line in text.splitlines() if line.startswith("corporate_db_pool_opened_total")]
    assert 1 <= float(opened.split()[-1]) <= bound, opened


@pytest.fixture(scope="module")
def api_token(stack):
    """A member of a fresh workspace in the stack's database, and their API token."""
    script = (
        "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token; "
        "from workspaces import services; "
        "user = get_user_model().objects.create_user(email='stack@example.com', password='stack test secret'); "
        "services.create_workspace(user, name='Stack', slug='stack'); "
        "print(Token.objects.create(user=user).key)"
    )
    return stack.shell(script)


def test_real_upload_is_ingested_by_the_worker_and_downloaded_through_nginx(stack, https, api_token):
    """The document API behind nginx: the upload limit, the task worker of start_production.sh, X-Accel downloads."""
    auth = {"Authorization": f"Token {api_token}"}
    text = b"# Stack notes\n\nThe stack test checks that uploads are read by the task worker.\n"
    response = https.post("/api/documents/?workspace=stack", files={"files": ("notes.md", text)}, headers=auth)
    assert response.status_code == 201, response.text[:500]
    document = response.json()["documents"][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = https.get(f"/api/documents/{document['id']}/", headers=auth).json()["status"]
        if status in ("ready", "failed"):
            break
        time.sleep(0.5)
    assert status == "ready"
    download = https.get(f"/api/documents/{document['id']}/download/", headers=auth)
    assert download.status_code == 200
    assert download.content == text  # sent by nginx from the protected media location
    assert download.headers["content-disposition"].startswith("attachment")
    assert "nosniff" in download.headers["x-content-type-options"]
    assert "x-accel-redirect" not in download.headers
    # Django itself only checked access and pointed nginx at the file.
    conn = HTTPConnection("127.0.0.1", stack.web_port, timeout=10)
    try:
        conn.request(
            "GET",
            f"/api/documents/{document['id']}/download/",
            headers={"Host": "localhost", "X-Forwarded-Proto": "https", **auth},
        )
        direct = conn.getresponse()
        assert direct.getheader("X-Accel-Redirect", "").startswith("/_protected_media/")
        assert direct.read() == b""
    finally:
        conn.close()
    over = b"x" * (stack.max_body_mb * 1024 * 1024 + 1024)
    refused = https.post("/api/documents/?workspace=stack", files={"files": ("big.md", over)}, headers=auth)
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("application/json")  # nginx's refusal, in the API's shape
    assert refused.json()["code"] == "request_too_large"


def client_from(stack, address):
    """An HTTPS client whose connections come from `address`: nginx sees it as $remote_addr (all of 127/8 is lo)."""
    trust = ssl.create_default_context(cafile=str(stack.cert))
    return httpx.Client(
        base_url=stack.https, transport=httpx.HTTPTransport(verify=trust, local_address=address), timeout=10
    )


def sign_in_page(client, stack, email, password, headers=None):
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": email, "password": password},
        headers={"Origin": stack.https, "Referer": f"{stack.https}/accounts/login/", **(headers or {})},
    )


def test_failed_sign_ins_lock_out_the_client_that_made_them_not_everyone(stack, api_token):
    """Behind nginx each client counts by its own address; a forged X-Forwarded-For does not shift the blame."""
    account = {"username": "stack@example.com", "password": "stack test secret"}  # made by the api_token fixture
    with client_from(stack, "127.0.0.2") as attacker, client_from(stack, "127.0.0.3") as owner:
        forged = {"X-Forwarded-For": "127.0.0.3"}
        answers = [sign_in_page(attacker, stack, account["username"], "wrong", forged).status_code for _ in range(5)]
        assert answers == [200, 200, 200, 200, 429]

        locked = sign_in_page(attacker, stack, account["username"], account["password"])
        assert locked.status_code == 429
        assert "paused for 15 minutes" in locked.text
        refused = attacker.post("/api/auth/token/", data=account)
        assert refused.status_code == 429
        assert "try again in 15 minutes" in refused.json()["detail"]

        assert owner.post("/api/auth/token/", data=account).status_code == 200
        assert sign_in_page(owner, stack, account["username"], account["password"]).status_code == 302
