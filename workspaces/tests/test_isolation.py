"""Every page and API endpoint of every app, tried by every persona.

An outsider gets 404, a role below the endpoint's least role gets 403, and
the least role itself succeeds. Apps contribute endpoints through
`<app>/tests/isolation_endpoints.py` (see isolation.py).
"""

from importlib import import_module
from types import SimpleNamespace

import pytest

from workspaces.tests.isolation import ROLES

APPS = ["workspaces", "documents", "llmgateway", "assistants"]


def _modules():
    found = []
    for app in APPS:
        try:
            found.append(import_module(f"{app}.tests.isolation_endpoints"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{app}.tests.isolation_endpoints":
                raise
    return found


MODULES = _modules()
CASES = [(module, endpoint) for module in MODULES for endpoint in module.ENDPOINTS]


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


def _request(endpoint, ctx, user, client_for, api_client_for):
    client = api_client_for(user) if endpoint.api else client_for(user)
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
    before = _snapshot() if expected != "ok" else None
    response = _request(endpoint, ctx, user, client_for, api_client_for)
    if expected == "ok":
        allowed = endpoint.ok or tuple(range(200, 400))
        assert response.status_code in allowed, (
            f"{endpoint} as {persona}: {response.status_code} {getattr(response, 'content', b'')[:300]!r}"
        )
    else:
        assert response.status_code == expected, (
            f"{endpoint} as {persona}: expected {expected}, got {response.status_code}"
        )
        # A refused request changed nothing.
        assert _snapshot() == before, f"{endpoint} as {persona} was refused but changed data"
        # Nothing of the workspace leaks into an outsider's error page.
        if expected == 404:
            assert ctx.workspace.name.encode() not in response.content


def test_every_app_contributes_endpoints():
    assert CASES, "no endpoints registered for the isolation suite"
