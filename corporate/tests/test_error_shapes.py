"""Errors answer in the caller's shape: DRF's under /api/, OpenAI's under /v1/, the styled page elsewhere.

Every failure here goes through Django's real request handling (middleware,
the handler400/403/404/500 views, DRF's exception handler); the failing
views of error_urls.py stand in only for a bug or a refusal in some view.
"""

import json

import pytest
from django.test import Client, RequestFactory, override_settings

from corporate.errors import error_response

OPENAI_KEYS = {"message", "type", "param", "code"}


def drf_detail(response, status):
    """The `detail` of a DRF-shaped JSON error, after checking status and content type."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body["detail"]


def openai_error(response, status):
    """The `error` object of an OpenAI-shaped JSON error, after checking status and content type."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == OPENAI_KEYS, body
    assert body["error"]["message"], body
    return body["error"]


def styled_page(response, status):
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert b"error-card" in response.content
    return response.content.decode()


@pytest.fixture
def signed_in(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def api_key(workspace, admin_user):
    from llmgateway.models import ApiKey

    _, token = ApiKey.create(workspace, "shapes", admin_user)
    return token


# 400: a Host header the site does not answer to (DisallowedHost, raised by Django's middleware).


def test_bad_host_is_json_under_the_apis_and_a_page_elsewhere(db):
    client = Client()
    detail = drf_detail(client.get("/api/workspaces/", HTTP_HOST="evil.example"), 400)
    assert "host name" in detail
    error = openai_error(client.get("/v1/models", HTTP_HOST="evil.example"), 400)
    assert error["type"] == "invalid_request_error" and error["code"] == "bad_host"
    assert "Bad request" in styled_page(client.get("/accounts/login/", HTTP_HOST="evil.example"), 400)


# 413 and 400: Django's body limits, raised while DRF's parsers read the body.


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversized_json_body_is_a_413_naming_the_limit(signed_in, api_client_for, member, workspace):
    body = json.dumps({"assistant": 1, "padding": "x" * 4096})
    for client in (signed_in, api_client_for(member)):
        detail = drf_detail(client.post("/api/conversations/", body, content_type="application/json"), 413)
        assert "at most 1 KB" in detail
    # The token endpoint has no authentication in front of its parser.
    detail = drf_detail(Client().post("/api/auth/token/", body, content_type="application/json"), 413)
    assert "at most 1 KB" in detail


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_too_many_form_fields_is_a_400_naming_the_limit(api_client_for, member, workspace):
    fields = "&".join(f"f{i}=1" for i in range(6))
    response = api_client_for(member).post("/api/assistants/", fields, content_type="application/x-www-form-urlencoded")
    assert "at most 5 per request" in drf_detail(response, 400)


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_too_many_form_fields_on_a_page_is_the_styled_page(signed_in, workspace):
    data = {f"f{i}": "1" for i in range(6)}
    page = styled_page(signed_in.post("/workspaces/new/", data), 400)
    assert "at most 5 per request" in page


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversized_body_to_v1_is_a_413_in_openai_shape(api_key):
    body = json.dumps({"model": "offline", "messages": [{"role": "user", "content": "x" * 4096}]})
    response = Client().post(
        "/v1/chat/completions", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key}"
    )
    assert openai_error(response, 413)["type"] == "invalid_request_error"


# 403: CSRF, with session authentication.


def test_csrf_failure_under_api_with_session_auth_is_json(member, workspace):
    from assistants.models import Assistant

    assistant = Assistant.objects.create(workspace=workspace, name="Helpdesk")
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post("/api/conversations/", {"assistant": assistant.pk}, content_type="application/json")
    assert "CSRF" in drf_detail(response, 403)
    assert not assistant.conversations.exists()


@pytest.mark.urls("corporate.tests.error_urls")
def test_csrf_failure_view_answers_in_the_paths_shape(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert "CSRF" in drf_detail(client.post("/api/_post/", {"a": "1"}), 403)
    assert openai_error(client.post("/v1/_post", {"a": "1"}), 403)["code"] == "csrf_failed"
    assert "This form has expired" in styled_page(client.post("/accounts/login/", {"username": "x"}), 403)


# 403 raised by a view (PermissionDenied), with the permission module's reason.


@pytest.mark.urls("corporate.tests.error_urls")
def test_permission_denied_keeps_its_reason_in_every_shape(db):
    client = Client()
    assert drf_detail(client.get("/api/_refuse/"), 403) == "You need the admin role or higher to do that."
    error = openai_error(client.get("/v1/_refuse"), 403)
    assert error["message"] == "You need the admin role or higher to do that."
    assert error["type"] == "permission_error"


# 404 and 405.


def test_unknown_paths_and_wrong_methods(api_client_for, member, workspace):
    client = Client()
    assert drf_detail(client.get("/api/no-such-thing/"), 404) == "Not found."
    assert openai_error(client.get("/v1/no-such-thing"), 404)["code"] == "not_found"
    assert "Page not found" in styled_page(client.get("/no-such-page/"), 404)
    api = api_client_for(member)
    assert "not allowed" in drf_detail(api.put("/api/documents/search/"), 405)
    for method, path, allowed in [
        ("put", "/v1/chat/completions", "POST"),
        ("get", "/v1/responses", "POST"),
        ("post", "/v1/models", "GET, HEAD"),
    ]:
        response = getattr(client, method)(path)
        assert openai_error(response, 405)["code"] == "method_not_allowed"
        assert response["Allow"] == allowed  # a 405 names the methods the address takes


def test_errors_of_views_that_render_other_formats_are_json(api_client_for, member):
    # The schema view renders YAML and the browsable API HTML; their errors are JSON all the same.
    api = api_client_for(member)
    assert "not allowed" in drf_detail(api.post("/api/schema/"), 405)
    assert drf_detail(Client().get("/api/workspaces/", HTTP_ACCEPT="text/html"), 401)


def test_options_on_the_swagger_page_is_a_405_not_a_500(api_client_for, member):
    # The page renders only its template; DRF's OPTIONS metadata has none to render into.
    for client in (Client(), api_client_for(member)):
        for path in ("/api/docs/", "/api/docs/?script="):
            response = client.options(path)
            assert "not allowed" in drf_detail(response, 405)
            assert response["Allow"] == "GET, HEAD"


# 429.


def test_locked_out_token_request_is_a_429_in_drf_shape(member):
    for _ in range(5):
        Client().post("/api/auth/token/", {"username": member.email, "password": "wrong"})
    response = Client().post("/api/auth/token/", {"username": member.email, "password": "wrong"})
    assert "Too many failed sign-ins" in drf_detail(response, 429)


# 500: a bug in a view.


@pytest.mark.urls("corporate.tests.error_urls")
def test_server_error_is_json_under_the_apis_and_the_plain_page_elsewhere(db):
    client = Client(raise_request_exception=False)
    assert "try again" in drf_detail(client.get("/api/_fail/"), 500)
    error = openai_error(client.get("/v1/_fail"), 500)
    assert error["type"] == "api_error" and error["code"] == "server_error"
    page = styled_page(client.get("/_fail/"), 500)
    assert "Something went wrong" in page


# 400: a NUL in the query string, refused by middleware.


def test_nul_in_query_is_refused_in_the_paths_shape(signed_in):
    assert "NUL" in drf_detail(signed_in.get("/api/workspaces/?q=a%00"), 400)
    assert "NUL" in openai_error(Client().get("/v1/models?q=a%00"), 400)["message"]
    assert "NUL" in styled_page(signed_in.get("/workspaces/?q=a%00"), 400)


# The helper itself, as another view (a 503 while the database is away) would use it.


@pytest.mark.parametrize("path", ["/api/documents/", "/v1/chat/completions", "/documents/"])
def test_error_response_for_a_503_needs_no_database(path):
    # No `db` fixture: pytest-django fails any query, as a database outage would.
    request = RequestFactory().get(path)
    response = error_response(request, 503, "Temporarily unavailable", "The database is not answering.", "db_down")
    assert response.status_code == 503
    if path.startswith("/api/"):
        assert json.loads(response.content) == {"detail": "The database is not answering."}
    elif path.startswith("/v1/"):
        assert json.loads(response.content) == {
            "error": {
                "message": "The database is not answering.",
                "type": "api_error",
                "param": None,
                "code": "db_down",
            }
        }
    else:
        assert b"Temporarily unavailable" in response.content
        assert b"The database is not answering." in response.content


def test_error_response_names_the_field_at_fault():
    factory = RequestFactory()
    api = error_response(factory.post("/api/documents/"), 400, "Bad", "Attach a file.", "required", param="file")
    assert json.loads(api.content) == {"detail": "Attach a file.", "file": ["Attach a file."]}
    v1 = error_response(factory.post("/v1/embeddings"), 400, "Bad", "Give the input.", "required", param="input")
    assert json.loads(v1.content)["error"]["param"] == "input"


# /v1/ in production runs behind its own short middleware list (corporate/handlers.py).


@pytest.mark.django_db(transaction=True)
def test_the_lean_v1_handler_answers_errors_in_openai_shape():
    from corporate.handlers import get_application
    from llmgateway.tests.test_v1_handler import call

    app = get_application()
    for request, status in [
        ({"method": "GET", "path": "/v1/models", "host": "evil.example"}, 400),
        ({"method": "GET", "path": "/v1/models", "query": "q=%00"}, 400),
        ({"method": "GET", "path": "/v1/no-such-thing"}, 404),
    ]:
        code, headers, content = call(app, **request)
        assert code == status, content
        assert headers["content-type"].startswith("application/json"), content
        body = json.loads(content)
        assert set(body) == {"error"} and set(body["error"]) == OPENAI_KEYS, body


def test_a_json_body_nested_too_deeply_is_a_400_under_the_api(api_client_for, member, workspace):
    client = api_client_for(member)
    body = '{"name": "Deep", "workspace": "acme", "description": ' + "[" * 5000 + "]" * 5000 + "}"
    for path in ("/api/assistants/", f"/api/documents/?workspace={workspace.slug}"):
        response = client.generic("POST", path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.content[:200])
        assert "nested too deeply" in response.json()["detail"]


def test_the_token_endpoint_refuses_a_body_nested_too_deeply(db):
    body = '{"username": ' + "[" * 5000 + "]" * 5000 + ', "password": "x"}'
    response = Client().post("/api/auth/token/", body, content_type="application/json")
    assert "nested too deeply" in drf_detail(response, 400)


def test_the_token_endpoint_refuses_an_overlong_email_by_name(db):
    # Longer than any address: never looked up (SQLite refuses so long a LIKE pattern).
    response = Client().post("/api/auth/token/", {"username": "a" * 60_000, "password": "x"})
    assert response.status_code == 400, response.content[:200]
    assert "username" in response.json()


def test_a_choice_echoing_a_lone_surrogate_is_a_400_naming_the_field(api_client_for, member, workspace):
    # JSON may spell a lone surrogate ("\ud800"); an error message that quotes it still renders.
    client = api_client_for(member)
    body = '{"email": "new@example.com", "role": "\\ud800"}'
    response = client.generic("POST", f"/api/workspaces/{workspace.slug}/invitations/", body, "application/json")
    assert response.status_code in (400, 403), response.content[:200]
    client = api_client_for(workspace.memberships.get(role="owner").user)
    response = client.generic("POST", f"/api/workspaces/{workspace.slug}/invitations/", body, "application/json")
    assert response.status_code == 400, response.content[:200]
    assert "\\ud800" in response.json()["role"][0]


def test_a_visit_to_an_address_that_takes_a_form_is_the_styled_405_page(signed_in, workspace):
    # A bookmark, a reload or a typed address of a button's target: a page that says so, not a blank answer.
    for path in ("/accounts/logout/", f"/workspaces/{workspace.slug}/archive/"):
        response = signed_in.get(path)
        page = styled_page(response, 405)
        assert "POST" in response["Allow"] and "button" in page, path
    assert "not allowed" in drf_detail(signed_in.get("/api/auth/token/"), 405)


def test_the_v1_address_itself_answers_in_openai_shape(db):
    # What a client configured with ".../v1" and no path finds there.
    assert openai_error(Client().get("/v1"), 404)["code"] == "not_found"
