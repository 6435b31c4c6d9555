"""Every page and API endpoint of every app, tried by every persona.

An outsider gets 404, a role below the endpoint's least role gets 403, and
the least role itself succeeds. Apps contribute endpoints, and the URLs that
need no workspace, through `<app>/tests/isolation_endpoints.py` (see
isolation.py); every URL pattern of the project must be one or the other.
"""

from types import SimpleNamespace

import pytest

from workspaces.tests.isolation import (
    ROLES,
    Endpoint,
    load_endpoints,
    project_apps,
    route_of,
    stale,
    success_problem,
    uncovered,
    url_routes,
)

APPS = [config.label for config in project_apps()]
MODULES = [load_endpoints(config) for config in project_apps()]
CASES = [(module, endpoint) for module in MODULES for endpoint in module.ENDPOINTS]
EXEMPT = [exempt for module in MODULES for exempt in module.EXEMPT]


def _personas_for(endpoint):
    """(persona, expected) pairs: outsider 404, lower roles 403, the least role allowed."""
    cases = [("outsider", 404)]
    least = ROLES.index(endpoint.role)
    cases += [(role, 403) for role in ROLES[:least]]
    cases.append((endpoint.role, "ok"))
    return cases


PARAMS = [
    pytest.param(module, endpoint, persona, expected, id=f"{endpoint}-as-{persona}")
    for module, endpoint in CASES
    for persona, expected in _personas_for(endpoint)
]


@pytest.fixture
def ctx(workspace, other_workspace, personas):
    return SimpleNamespace(workspace=workspace, other_workspace=other_workspace, users=personas)


def _request(endpoint, ctx, client):
    data = endpoint.data(ctx) if endpoint.data else None
    method = getattr(client, endpoint.method.lower())
    path = endpoint.path(ctx)
    if endpoint.method == "GET":
        return method(path, data or {})
    if endpoint.api and endpoint.format == "json":
        return method(path, data or {}, format="json")
    if endpoint.api and endpoint.format == "multipart":
        return method(path, data or {}, format="multipart")
    return method(path, data or {})


def _snapshot():
    """Every row of the apps' models, to show a refused request changed nothing."""
    from django.apps import apps

    state = {}
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            state[model._meta.label] = list(model.objects.order_by("pk").values())
    return state


@pytest.mark.parametrize("module, endpoint, persona, expected", PARAMS)
def test_isolation(module, endpoint, persona, expected, ctx, client_for, api_client_for):
    if hasattr(module, "setup"):
        module.setup(ctx)
    user = ctx.users[persona]
    ctx.persona = persona
    client = api_client_for(user) if endpoint.api else client_for(user)  # signing in is not the request's change
    before = _snapshot() if expected != "ok" else None
    response = _request(endpoint, ctx, client)
    if expected == "ok":
        problem = success_problem(endpoint, ctx, response)
        assert problem is None, f"{endpoint} as {persona}: {problem} {getattr(response, 'content', b'')[:300]!r}"
    else:
        assert response.status_code == expected, (
            f"{endpoint} as {persona}: expected {expected}, got {response.status_code}"
        )
        # A refused request changed nothing.
        assert _snapshot() == before, f"{endpoint} as {persona} was refused but changed data"
        # Nothing of the workspace leaks into an outsider's error page.
        if expected == 404:
            assert ctx.workspace.name.encode() not in response.content


def test_every_app_contributes():
    assert {"corporate", "workspaces", "documents", "assistants", "llmgateway"} <= set(APPS)
    for label, module in zip(APPS, MODULES, strict=True):
        assert module.ENDPOINTS or module.EXEMPT, f"{label}/tests/isolation_endpoints.py lists nothing"
    # Every app with pages inside a workspace has endpoints in the suite.
    with_endpoints = {label for label, module in zip(APPS, MODULES, strict=True) if module.ENDPOINTS}
    assert {"workspaces", "documents", "assistants", "llmgateway"} <= with_endpoints


def _covered_routes(ctx):
    for module in MODULES:
        if hasattr(module, "setup"):
            module.setup(ctx)
    routes = set()
    for _, endpoint in CASES:
        ctx.persona = endpoint.role
        routes.add(route_of(endpoint.path(ctx)))
    return routes


def test_every_url_is_in_the_suite_or_exempt(ctx):
    routes = list(url_routes())
    missing = uncovered(routes, _covered_routes(ctx), EXEMPT)
    assert not missing, (
        "URL patterns neither in the isolation suite nor exempt; add an Endpoint (or an Exempt with the reason) "
        "to <app>/tests/isolation_endpoints.py:\n" + "\n".join(f"  {route}  ({view})" for route, view in missing)
    )
    assert not stale(routes, EXEMPT), f"exemptions that match no URL any more: {stale(routes, EXEMPT)}"


@pytest.mark.urls("workspaces.tests.isolation_urls")
def test_a_new_unlisted_url_fails_the_coverage_check(ctx):
    missing = uncovered(list(url_routes()), _covered_routes(ctx), EXEMPT)
    assert missing == [("workspaces/<slug:slug>/export/", "workspaces.tests.isolation_urls.export")]


def test_a_refused_post_that_redirects_is_not_a_success(ctx, client_for, owner, workspace):
    # The last owner cannot step down: the view redirects to the members page with an error message.
    from workspaces.models import Membership
    from workspaces.tests.isolation_endpoints import ENDPOINTS

    change_role = next(endpoint for endpoint in ENDPOINTS if endpoint.name == "change a role")
    membership = Membership.objects.get(workspace=workspace, user=owner)
    url = f"/workspaces/{workspace.slug}/members/{membership.pk}/role/"
    response = client_for(owner).post(url, {"role": "viewer"})
    assert response.status_code == 302 and response["Location"] == change_role.redirect(ctx)
    assert "at least one owner" in success_problem(change_role, ctx, response)
    # Without a declared redirect, any redirect is refused as a success.
    undeclared = Endpoint("change a role", "POST", change_role.path, "admin")
    assert "a redirect counts only when declared" in success_problem(undeclared, ctx, response)


def test_an_app_without_isolation_endpoints_is_an_error():
    from django.apps import apps

    with pytest.raises(LookupError, match="has no axes/tests/isolation_endpoints.py"):
        load_endpoints(apps.get_app_config("axes"))
