"""The WSGI dispatch: /v1/ runs behind the short middleware list, pages behind the full one."""

import json
from io import BytesIO
from wsgiref.util import setup_testing_defaults

import pytest

from corporate.handlers import V1_PREFIX, LeanWSGIHandler, dispatch, get_application

QUESTION = {"model": "offline", "messages": [{"role": "user", "content": "What does the gateway do?"}]}


def call(app, method, path, body=b"", query="", **headers):
    """One request through a WSGI application: (status, headers, body)."""
    environ = {}
    setup_testing_defaults(environ)
    environ.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        QUERY_STRING=query,
        SERVER_NAME="testserver",
        HTTP_HOST="testserver",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=str(len(body)),
    )
    environ["wsgi.input"] = BytesIO(body)
    environ.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = {name.lower(): value for name, value in response_headers}

    chunks = app(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return seen["status"], seen["headers"], content


@pytest.fixture
def app():
    return get_application()


@pytest.fixture
def bearer(api_key):
    return "Bearer " + api_key[1]


@pytest.mark.django_db(transaction=True)
def test_v1_skips_the_page_middleware(app, bearer):
    status, headers, content = call(
        app, "POST", "/v1/chat/completions", json.dumps(QUESTION).encode(), authorization=bearer
    )
    assert status == 200, content
    assert json.loads(content)["object"] == "chat.completion"
    # No session or CSRF cookie, no clickjacking or CSP header: that middleware did not run.
    assert "set-cookie" not in headers
    assert "x-frame-options" not in headers
    assert "content-security-policy" not in headers
    # The security middleware did.
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.django_db(transaction=True)
def test_a_completion_answer_carries_its_length(app, bearer):
    # With a length the server sends the answer in one piece, not chunked with a last chunk of its own.
    for _ in range(2):  # a miss, then a hit
        status, headers, content = call(
            app, "POST", "/v1/chat/completions", json.dumps(QUESTION).encode(), authorization=bearer
        )
        assert status == 200, content
        assert headers["content-length"] == str(len(content))


@pytest.mark.django_db(transaction=True)
def test_pages_keep_the_full_middleware(app):
    status, headers, _ = call(app, "GET", "/accounts/login/")
    assert status == 200
    assert headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in headers
    assert "csrftoken" in headers.get("set-cookie", "")


def test_only_the_v1_prefix_is_dispatched_to_the_api():
    seen = []

    def named(name):
        def app(environ, start_response):
            seen.append(name)
            return []

        return app

    application = dispatch(named("site"), named("api"))
    for path in ("/v1/models", "/v1/chat/completions", "/v1", "/v1x/", "/api/v1/", "/"):
        application({"PATH_INFO": path}, None)
    assert seen == ["api", "api", "site", "site", "site", "site"]
    assert V1_PREFIX == "/v1/"


@pytest.mark.django_db(transaction=True)
def test_v1_refuses_a_host_outside_allowed_hosts(app, bearer):
    status, _, content = call(
        app, "POST", "/v1/chat/completions", json.dumps(QUESTION).encode(), authorization=bearer, host="evil.example"
    )
    assert status == 400, content


@pytest.mark.django_db(transaction=True)
def test_every_v1_answer_names_a_request(app, bearer):
    """Answers the views do not make (a host refused, an address the gateway does not serve) too."""
    body = json.dumps(QUESTION).encode()
    answers = [
        call(app, "POST", "/v1/chat/completions", body, authorization=bearer),
        call(app, "POST", "/v1/chat/completions", body, authorization=bearer, host="evil.example"),
        call(app, "POST", "/v1/images/generations", body, authorization=bearer),
        call(app, "GET", "/v1/models", query="q=%00", authorization=bearer),
        call(app, "GET", "/v1/models", authorization="Bearer nope"),
    ]
    assert [status for status, _, _ in answers] == [200, 400, 404, 400, 401]
    ids = [headers.get("x-request-id") for _, headers, _ in answers]
    assert None not in ids and len(set(ids)) == len(ids)


@pytest.mark.django_db(transaction=True)
def test_v1_refuses_a_body_over_the_limit(app, bearer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({**QUESTION, "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
    status, _, content = call(app, "POST", "/v1/chat/completions", body, authorization=bearer)
    assert status == 413
    assert "too large" in json.loads(content)["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_v1_refuses_nul_in_the_query(app, bearer):
    status, _, _ = call(app, "GET", "/v1/models", query="q=%00", authorization=bearer)
    assert status == 400


@pytest.mark.django_db(transaction=True)
def test_v1_behind_the_proxy_redirects_plain_http_and_trusts_its_https_header(bearer, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    api = LeanWSGIHandler(settings.V1_MIDDLEWARE)  # built after the settings change, as at start-up
    status, headers, _ = call(api, "GET", "/v1/models", authorization=bearer)
    assert status == 301 and headers["location"].startswith("https://testserver/v1/models")
    status, headers, _ = call(api, "GET", "/v1/models", authorization=bearer, x_forwarded_proto="https")
    assert status == 200
    assert headers["strict-transport-security"].startswith("max-age=3600")


def test_building_the_lean_handler_leaves_the_site_middleware_alone(settings):
    before = list(settings.MIDDLEWARE)
    handler = LeanWSGIHandler(["corporate.middleware.ValidateHostMiddleware"])
    assert list(settings.MIDDLEWARE) == before
    assert handler._middleware_chain is not None


@pytest.mark.django_db(transaction=True)
def test_v1_refusals_carry_the_security_headers(app, bearer):
    # As when SecurityMiddleware ran outside the host and query checks: their 400s get its headers too.
    for extra in ({"host": "evil.example"}, {"query": "q=%00"}):
        query = extra.pop("query", "")
        status, headers, _ = call(app, "GET", "/v1/models", query=query, authorization=bearer, **extra)
        assert status == 400
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


@pytest.mark.django_db(transaction=True)
def test_v1_security_headers_match_the_security_middleware(app, bearer, settings):
    from django.http import HttpResponse
    from django.middleware.security import SecurityMiddleware
    from django.test import RequestFactory

    expected = SecurityMiddleware(lambda request: HttpResponse()).process_response(
        RequestFactory().get("/v1/models"), HttpResponse()
    )
    status, headers, _ = call(app, "GET", "/v1/models", authorization=bearer)
    assert status == 200
    for name, value in expected.items():
        if name.lower() != "content-type":
            assert headers[name.lower()] == value, name


@pytest.mark.django_db(transaction=True)
def test_a_completion_that_fails_inside_the_gateway_names_its_usage_record(v1, remote_model, upstream, monkeypatch):
    import uuid

    from llmgateway.gateway import flight
    from llmgateway.metering import records
    from llmgateway.models import UsageRecord

    def broken(*args, **kwargs):
        raise RuntimeError("a fault of the gateway's own")

    monkeypatch.setattr(flight, "_open_flight", broken)
    response = v1({"model": "remote", "messages": [{"role": "user", "content": "this fails"}]})
    assert response.status_code == 500
    records.drain()
    record = UsageRecord.objects.get(request_id=uuid.UUID(response["x-request-id"]))
    assert record.status == response.status_code
