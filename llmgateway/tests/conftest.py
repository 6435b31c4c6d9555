"""Fixtures of the gateway tests: a real local OpenAI-compatible server, models and keys."""

import pytest

from llmgateway.tests.fake_openai import FakeOpenAI

FAST_RETRIES = {"LLM_RETRY_BACKOFF": 0.01, "LLM_BREAKER_FAILURES": 50, "LLM_BREAKER_COOLDOWN": 1}


@pytest.fixture(scope="session")
def _upstream_server():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(_upstream_server):
    """The local OpenAI-compatible server, with its counters and script reset."""
    _upstream_server.reset()
    _upstream_server.latency = 0.0
    _upstream_server.chunk_delay = 0.0
    _upstream_server.stable = False
    _upstream_server.trickle_interval = 0.5
    _upstream_server.trickle_for = 10.0
    _upstream_server.usage_reply = None
    yield _upstream_server
    _upstream_server.reset()


@pytest.fixture(autouse=True)
def _gateway_state(settings):
    from llmgateway.cache import coalesce, stats
    from llmgateway.providers.resilience import breaker

    for name, value in FAST_RETRIES.items():
        setattr(settings, name, value)
    breaker.reset()
    coalesce.reset()
    stats.discard_pending()
    yield
    breaker.reset()
    coalesce.reset()


@pytest.fixture
def no_stray_records():
    """For a test that counts every usage record: a response an earlier test left unread records itself (a
    client gone) when the garbage collector gets to it, so it is collected, and dropped, before this test."""
    import gc

    from llmgateway.metering import records

    gc.collect()
    records.discard_pending()


@pytest.fixture
def remote_model(db, upstream):
    """A model served by the local upstream; its key is encrypted at rest."""
    from llmgateway.models import ModelConfig

    model = ModelConfig(
        name="remote",
        provider="openai-compatible",
        base_url=upstream.base_url,
        upstream_model="fake-model",
        price_input_per_1k="0.5",
        price_output_per_1k="1.5",
        timeout_seconds=5,
        max_retries=2,
    )
    model.set_api_key("sk-upstream-secret-123")
    model.save()
    return model


@pytest.fixture
def api_key(workspace, admin_user):
    """(ApiKey, full key text) for the acme workspace, created by its admin."""
    from llmgateway.models import ApiKey

    return ApiKey.create(workspace, "tests", admin_user)


@pytest.fixture
def v1(client, api_key):
    """POST /v1/chat/completions with the workspace key; returns the response."""

    def post(body, key=None, **headers):
        import json

        return client.post(
            "/v1/chat/completions",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key or api_key[1]}",
            **headers,
        )

    return post


@pytest.fixture
def openai_client(live_server, api_key, monkeypatch):
    """The official `openai` client against the live server, unchanged except for base_url and api_key."""
    import openai
    from django.db import connections

    # The live server answers in threads; persistent connections would outlive the test database.
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)

    return openai.OpenAI(base_url=live_server.url + "/v1", api_key=api_key[1], max_retries=0, timeout=20)
