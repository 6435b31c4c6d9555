"""A Redis outage costs pages one socket timeout per process and interval, not one per cache operation.

The site runs on a redis-server of the test's own, configured as in
production (django-redis, IGNORE_EXCEPTIONS, the project's socket timeout).
The server is paused (SIGSTOP: connections are accepted by the kernel and
then nothing answers, the worst case) or stopped. What is counted is what
Redis itself saw: the connections it accepted once it could look again.
"""

import json
import logging
import time

import pytest
from django.test import Client

PASSWORD = "correct horse battery"
REQUEST = {"model": "offline", "messages": [{"role": "user", "content": "hello"}], "temperature": 0}


def _redis_records(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING and "redis" in (r.name + r.getMessage()).lower()]


def _use_the_site(signed_in, key, member, requests=20):
    """Dashboard pages with a session, a fresh sign-in and gateway calls: all must work."""
    for _ in range(requests):
        page = signed_in.get("/")
        assert page.status_code == 200
        assert member.display_name.encode() in page.content  # the session still works, from the database
    newcomer = Client()
    response = newcomer.post("/accounts/login/", {"username": member.email, "password": PASSWORD})
    assert response.status_code == 302
    assert newcomer.get("/").status_code == 200
    for _ in range(5):
        response = signed_in.post(
            "/v1/chat/completions",
            data=json.dumps(REQUEST),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        assert response.status_code == 200


@pytest.fixture
def one_thread(monkeypatch):
    """The processes' periodic writes (usage records, statistics, metrics) run in the request's thread.

    Their background threads would otherwise write while a request waits out the first timeout, each
    on a connection of its own, and what Redis counts would depend on the threads' timing.
    """
    from corporate.background import Flusher
    from corporate.observability import middleware, timeline
    from llmgateway.cache import stats
    from llmgateway.metering import records

    for module in (middleware, timeline, stats, records):
        flusher = module._flusher
        assert isinstance(flusher, Flusher)
        job = flusher.job
        monkeypatch.setattr(flusher, "job", lambda woken: None)  # a running thread's next turns do nothing
        monkeypatch.setattr(flusher, "wake", lambda job=job: job(True))
        monkeypatch.setattr(flusher, "start", lambda: None)


@pytest.fixture
def site(one_thread, redis_cache, client_for, member, workspace, settings):
    from llmgateway.models import ApiKey

    settings.REDIS_RETRY_SECONDS = 30  # the whole test is one interval
    signed_in = client_for(member)
    _, key = ApiKey.create(workspace, "outage", member)
    _use_the_site(signed_in, key, member, requests=1)  # sessions and key in Redis, connections open
    return signed_in, key


def test_a_paused_redis_is_tried_once_and_pages_keep_working(site, redis_cache, member, caplog):
    signed_in, key = site
    accepted = redis_cache.connections_received()
    redis_cache.pause()
    try:
        with caplog.at_level(logging.WARNING):
            _use_the_site(signed_in, key, member)
    finally:
        redis_cache.resume()
    # Every operation after the first timeout was answered "unavailable" without
    # touching the network: Redis saw no new connection but our INFO call.
    assert redis_cache.connections_received() - accepted <= 2
    records = _redis_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None  # a warning, not a traceback


def test_a_stopped_redis_logs_one_warning_per_interval_and_comes_back(site, redis_cache, member, caplog, settings):
    signed_in, key = site
    settings.REDIS_RETRY_SECONDS = 1
    redis_cache.stop()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        while time.monotonic() - started < 2.5:
            _use_the_site(signed_in, key, member, requests=5)
    records = _redis_records(caplog)
    # Tried again once a second: at most one warning each time, never a traceback. (The interval is
    # measured on the monotonic clock before the warning is written; a record's wall-clock time comes
    # later, by however long that thread then waited for the CPU: hence the margin.)
    assert len(records) >= 2, [r.getMessage() for r in records]
    assert all(later.created - earlier.created >= 0.9 for earlier, later in zip(records, records[1:], strict=False))
    assert all(r.exc_info is None for r in records)

    redis_cache.start().used_again()
    sessions = redis_cache.client(db=9).keys("*sessions.cached_db*")
    assert sessions == []
    assert signed_in.get("/").status_code == 200
    assert len(redis_cache.client(db=9).keys("*sessions.cached_db*")) == 1  # the session is cached again


def test_with_redis_url_every_cache_connection_goes_through_the_circuit():
    from corporate.tests.test_startup import run_manage

    script = (
        "from django.conf import settings; from django.core.cache import cache; "
        "print(settings.REDIS_RETRY_SECONDS, settings.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS, "
        "cache.client.get_client().connection_pool.connection_class.circuit is __import__('corporate.redis_circuit')"
        ".redis_circuit.circuit)"
    )
    # LLM_REDIS_RETRY_SECONDS is the setting's old name; it still works.
    result = run_manage("shell", "-c", script, REDIS_URL="redis://127.0.0.1:1/0", LLM_REDIS_RETRY_SECONDS="7")
    assert result.stdout.strip().splitlines()[-1].split() == ["7", "False", "True"], result.stderr
