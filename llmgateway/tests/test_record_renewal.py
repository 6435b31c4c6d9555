"""A workspace's and a model's cached records are read again before their TTL ends, once, after a response.

Both records live WORKSPACE_INFO_TTL / MODEL_INFO_TTL seconds in the store. Without an early read they
fall out while in use, and every request of that moment reads the database at once (a herd). A record in
its last RENEW_BEFORE seconds is read again by the first request that sees it (after its response), and
the others go on using it.
"""

import dataclasses
import json
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

from llmgateway import registry
from llmgateway.cache.entries import (
    MODEL_INFO_TTL,
    WORKSPACE_INFO_TTL,
    WorkspaceInfo,
    model_info_key,
    workspace_info_key,
)
from llmgateway.cache.records import RENEW_BEFORE
from llmgateway.cache.store import get_store
from llmgateway.registry import ModelSpec

REQUEST = {"model": "offline", "messages": [{"role": "user", "content": "renew me"}], "temperature": 0}


def _queries_on(table, client_call):
    with CaptureQueriesContext(connection) as queries:
        response = client_call()
    return response, sum(1 for query in queries.captured_queries if table in query["sql"])


def _age(store_key, loads, seconds):
    """Make the cached record look `seconds` old (as read from the database that long ago)."""
    store = get_store()
    value = loads(store.get_many([store_key])[0])
    store.set(store_key, dataclasses.replace(value, loaded_at=time.time() - seconds).dumps(), 600)


def test_a_model_record_nearly_due_is_read_again_once_after_the_response(v1):
    assert v1(REQUEST).status_code == 200
    key = model_info_key(registry.lookup_name("offline"))
    assert time.time() - ModelSpec.loads(get_store().get_many([key])[0]).loaded_at < 60

    _age(key, ModelSpec.loads, MODEL_INFO_TTL - RENEW_BEFORE - 30)  # not yet in its last part: left alone
    response, reads = _queries_on("llmgateway_modelconfig", lambda: v1(REQUEST))
    assert response["X-Cache"] == "HIT" and reads == 0

    _age(key, ModelSpec.loads, MODEL_INFO_TTL - RENEW_BEFORE + 5)
    response, reads = _queries_on("llmgateway_modelconfig", lambda: v1(REQUEST))
    assert response["X-Cache"] == "HIT" and reads >= 1  # the hit was answered from the old record, then renewed
    assert time.time() - ModelSpec.loads(get_store().get_many([key])[0]).loaded_at < 60
    for _ in range(2):
        response, reads = _queries_on("llmgateway_modelconfig", lambda: v1(REQUEST))
        assert response["X-Cache"] == "HIT" and reads == 0


def test_a_workspace_record_nearly_due_is_read_again_once_after_the_response(v1, workspace):
    assert v1(REQUEST).status_code == 200
    key = workspace_info_key(workspace.pk)
    assert time.time() - WorkspaceInfo.loads(get_store().get_many([key])[0]).loaded_at < 60

    _age(key, WorkspaceInfo.loads, WORKSPACE_INFO_TTL - RENEW_BEFORE - 30)
    response, reads = _queries_on("llmgateway_cachegeneration", lambda: v1(REQUEST))
    assert response["X-Cache"] == "HIT" and reads == 0

    _age(key, WorkspaceInfo.loads, WORKSPACE_INFO_TTL - RENEW_BEFORE + 5)
    response, reads = _queries_on("llmgateway_cachegeneration", lambda: v1(REQUEST))
    assert response["X-Cache"] == "HIT" and reads == 1
    assert time.time() - WorkspaceInfo.loads(get_store().get_many([key])[0]).loaded_at < 60
    for _ in range(2):
        response, reads = _queries_on("llmgateway_cachegeneration", lambda: v1(REQUEST))
        assert response["X-Cache"] == "HIT" and reads == 0


def test_the_read_time_does_not_make_two_records_differ():
    # The gateway compares the spec it guessed with the one it read (entry.serve): a renewal must not
    # count as a change of the model.
    spec = registry.BUILTIN_OFFLINE
    assert dataclasses.replace(spec, loaded_at=time.time()) == spec
    assert hash(dataclasses.replace(spec, loaded_at=1.0)) == hash(spec)


def test_records_with_fields_this_version_does_not_know_are_read():
    # Written by a newer version: the fields it added are left out, as for a model's record.
    raw = json.dumps({"id": 3, "cache_policy": "all", "generation": 2, "archived": False, "later": 1}).encode()
    info = WorkspaceInfo.loads(raw)
    assert (info.id, info.cache_policy, info.generation, info.loaded_at) == (3, "all", 2, 0.0)
