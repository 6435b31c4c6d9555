"""A request hands its database connection back while it waits on a remote model."""

import pytest
from django.db import connection, transaction

from llmgateway import gateway, registry

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Hello there"}]


def _open():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.connection is not None


def test_remote_miss_releases_the_connection(workspace, remote_model, upstream):
    upstream.latency = 0.05
    _open()
    result = gateway.complete(workspace, {"model": "remote", "messages": MESSAGES})
    assert not result.cache_hit and upstream.calls == 1
    assert connection.connection is None  # closed before the upstream call, not reopened since


def test_remote_stream_releases_the_connection(workspace, remote_model, upstream):
    _open()
    stream = gateway.stream(workspace, {"model": "remote", "messages": MESSAGES})
    first = next(iter(stream))
    assert first["object"] == "chat.completion.chunk"
    assert connection.connection is None


def test_offline_and_transactions_keep_the_connection(workspace):
    _open()
    gateway.complete(workspace, {"model": "offline", "messages": MESSAGES})
    assert connection.connection is not None
    remote = registry.ModelSpec(name="x", provider="openai-compatible")
    with transaction.atomic():
        gateway.release_database(remote)
        assert connection.connection is not None
    gateway.release_database(remote)
    assert connection.connection is None
