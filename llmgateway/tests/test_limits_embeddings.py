"""Limits on embeddings: /v1/embeddings like a completion, a chat turn's retrieval as part of the turn, ingestion charged."""

import json
from decimal import Decimal

import pytest

from llmgateway.embeddings import EmbeddingError, embed_for
from llmgateway.metering import limits, records
from llmgateway.models import Limit, UsageRecord


def post(client, key, texts, model=None):
    body = {"input": texts, **({"model": model} if model else {})}
    return client.post(
        "/v1/embeddings", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )


@pytest.fixture
def remote_embed(db, upstream):
    from llmgateway import registry
    from llmgateway.models import ModelConfig

    model = ModelConfig.objects.create(
        name="remote-embed",
        kind="embedding",
        provider="openai-compatible",
        base_url=upstream.base_url,
        upstream_model="e",
        price_input_per_1k="0.5",
    )
    registry.forget_all()
    return model


def test_a_keys_requests_per_minute_hold_on_embeddings(client, api_key):
    Limit.objects.create(kind="key", workspace=api_key[0].workspace, api_key=api_key[0], rpm=2)
    first, second, third = (post(client, api_key[1], [f"text {i}"]) for i in range(3))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first["x-ratelimit-limit-requests"] == "2"
    assert [first["x-ratelimit-remaining-requests"], second["x-ratelimit-remaining-requests"]] == ["1", "0"]
    assert third.status_code == 429 and int(third["Retry-After"]) >= 1
    assert third.json()["error"]["code"] == "rate_limit_exceeded"
    assert third["x-ratelimit-remaining-requests"] == "0"
    # A cached text is a request too.
    assert post(client, api_key[1], ["text 0"]).status_code == 429
    records.drain()
    assert list(UsageRecord.objects.order_by("created_at").values_list("cache", "status")) == [
        ("miss", 200),
        ("miss", 200),
        ("refused", 429),
        ("refused", 429),
    ]


def test_the_user_limits_of_the_keys_owner_hold_on_embeddings(client, api_key, admin_user):
    Limit.objects.create(kind="user", workspace=api_key[0].workspace, user=admin_user, rpm=1)
    assert post(client, api_key[1], ["a"]).status_code == 200
    refused = post(client, api_key[1], ["b"])
    assert refused.status_code == 429 and "your account in this workspace" in refused.json()["error"]["message"]


def test_a_workspace_budget_refuses_new_texts_but_not_cached_ones(client, api_key, remote_embed, upstream):
    Limit.objects.create(kind="workspace", workspace=api_key[0].workspace, daily_budget=Decimal("0.001"))
    assert post(client, api_key[1], ["hello world"], "remote-embed").status_code == 200  # spends past the budget
    refused = post(client, api_key[1], ["good morning"], "remote-embed")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"
    assert int(refused["Retry-After"]) >= 1
    assert post(client, api_key[1], ["hello world"], "remote-embed")["X-Cache"] == "HIT"  # costs nothing
    assert len(upstream.requests) == 1


def test_a_chat_turns_retrieval_is_part_of_the_turn(db, workspace, member, remote_embed, upstream):
    Limit.objects.create(kind="user", workspace=workspace, user=member, rpm=1, daily_budget=Decimal("0.001"))
    # Not a request of its own (the turn's answer is the one request): two pass a limit of one per minute.
    embed_for(workspace.pk, ["what is the leave policy"], model="remote-embed", origin="retrieval", user_id=member.pk)
    embed_for(workspace.pk, ["what is the leave policy"], model="remote-embed", origin="retrieval", user_id=member.pk)
    assert len(upstream.requests) == 1  # the second was cached
    with pytest.raises(EmbeddingError) as refused:
        embed_for(workspace.pk, ["who approves it"], model="remote-embed", origin="retrieval", user_id=member.pk)
    assert refused.value.status == 429 and refused.value.refusal.limit == "day"
    assert len(upstream.requests) == 1


def test_ingestion_is_never_refused_and_its_spend_counts(db, workspace, member, remote_embed, upstream):
    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=Decimal("0.001"))
    embed_for(workspace.pk, ["hello world"], model="remote-embed", origin="retrieval", user_id=member.pk)
    scope = limits.scopes_for(workspace.pk, None, None, {"workspace": {"daily_budget": 1000}}, None)[0]
    before = limits.state_of(scope)["daily_budget"]["used"]
    assert before >= 0.001  # the budget is used up
    result = embed_for(
        workspace.pk, ["passage one", "passage two"], model="remote-embed", origin="ingestion", cache=False
    )
    assert result.vectors.shape[0] == 2
    after = limits.state_of(scope)["daily_budget"]["used"]
    assert after > before  # what ingestion spent is added to the budget
    records.drain()
    assert UsageRecord.objects.filter(origin="ingestion", cache="bypass", status=200).count() == 1
