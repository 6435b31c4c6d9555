"""POST /v1/embeddings: the built-in local model and a configured OpenAI-compatible one, through the openai client."""

import json

import pytest

from llmgateway.embeddings import LOCAL_DIMENSIONS, EmbeddingError, embed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def openai_client(live_server, api_key, monkeypatch):
    import openai
    from django.db import connections

    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key=api_key[1], max_retries=0, timeout=20)


def test_local_model_through_the_openai_client(openai_client):
    # The client asks for base64 by default and decodes it; the vectors are unit length.
    result = openai_client.embeddings.create(model="local", input=["sabbatical", "a long paid break"])
    assert [len(item.embedding) for item in result.data] == [LOCAL_DIMENSIONS, LOCAL_DIMENSIONS]
    assert abs(sum(x * x for x in result.data[0].embedding) - 1) < 1e-3
    assert result.usage.prompt_tokens > 0
    floats = openai_client.embeddings.create(model="local", input="sabbatical", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-6)


def test_a_configured_upstream_model(openai_client, upstream, db):
    from llmgateway import registry
    from llmgateway.models import ModelConfig

    ModelConfig.objects.create(
        name="remote-embed",
        kind="embedding",
        provider="openai-compatible",
        base_url=upstream.base_url,
        upstream_model="e",
    )
    registry.forget_all()
    result = openai_client.embeddings.create(model="remote-embed", input="hello world")
    assert len(result.data[0].embedding) == upstream.embedding_dims
    assert upstream.requests[-1] == {"model": "e", "input": ["hello world"]}


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"input": []}, 400, "input"),
        ({"input": [1, 2]}, 400, "input"),
        ({"model": "local"}, 400, "input"),
        ({"input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"input": "x", "model": "no-such-model"}, 404, "model"),
        ({"input": "x", "model": 7}, 400, "model"),
    ],
)
def test_bad_requests_get_openai_errors(client, api_key, body, status, param):
    response = client.post(
        "/v1/embeddings", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}"
    )
    assert response.status_code == status
    assert response.json()["error"]["param"] == param


def test_without_a_key_401(client):
    response = client.post("/v1/embeddings", json.dumps({"input": "x"}), content_type="application/json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_a_dead_upstream_is_a_clear_error(db, settings):
    from deploy.tests.stack import free_port
    from llmgateway import registry
    from llmgateway.models import ModelConfig

    ModelConfig.objects.create(
        name="dead-embed", kind="embedding", provider="openai-compatible", base_url=f"http://127.0.0.1:{free_port()}/v1"
    )
    registry.forget_all()
    with pytest.raises(EmbeddingError, match="could not be reached"):
        embed(["x"], model="dead-embed")


def test_a_text_with_no_known_word_gets_a_finite_vector():
    result = embed(["\u2603\u2603", "words"])
    assert result.vectors.shape == (2, LOCAL_DIMENSIONS)
    assert all(abs(float(x)) < 10 for x in result.vectors[0])


def _post_embeddings(client, key, body):
    return client.post(
        "/v1/embeddings", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )


@pytest.mark.usefixtures("no_stray_records")
def test_embeddings_are_cached_per_text_and_metered_like_completions(client, api_key, upstream, admin_user):
    from llmgateway import registry
    from llmgateway.metering import records
    from llmgateway.models import ModelConfig, UsageRecord

    ModelConfig.objects.create(
        name="remote-embed",
        kind="embedding",
        provider="openai-compatible",
        base_url=upstream.base_url,
        upstream_model="e",
        price_input_per_1k="0.5",
    )
    registry.forget_all()
    body = {"model": "remote-embed", "input": ["hello world", "good morning"]}
    first = _post_embeddings(client, api_key[1], body)
    second = _post_embeddings(client, api_key[1], body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert len(upstream.requests) == 1  # the second answer came from the cache
    assert [d["embedding"] for d in second.json()["data"]] == [d["embedding"] for d in first.json()["data"]]
    # The answer reports the input's tokens, as OpenAI's do, though the hit spent none (its record says 0 below).
    assert second.json()["usage"]["prompt_tokens"] > 0
    # One new text: only it goes upstream.
    third = _post_embeddings(client, api_key[1], {"model": "remote-embed", "input": ["hello world", "good night"]})
    assert third["X-Cache"] == "MISS" and upstream.requests[-1]["input"] == ["good night"]

    assert records.drain() == 3
    rows = list(
        UsageRecord.objects.order_by("created_at").values_list(
            "origin", "model", "cache", "status", "prompt_tokens", "cost", "workspace_id", "api_key_id", "user_id"
        )
    )
    assert [row[:4] for row in rows] == [
        ("embeddings", "remote-embed", "miss", 200),
        ("embeddings", "remote-embed", "hit", 200),
        ("embeddings", "remote-embed", "miss", 200),
    ]
    assert rows[0][4] > 0 and rows[0][5] > 0 and rows[1][4] == 0 and rows[1][5] == 0
    assert {row[6:] for row in rows} == {(api_key[0].workspace_id, api_key[0].pk, admin_user.pk)}


def test_the_embedding_cache_is_kept_per_workspace(db, workspace):
    from llmgateway.embeddings import embed_for
    from workspaces.models import Workspace

    other = Workspace.objects.create(slug="other", name="Other")
    assert embed_for(workspace.pk, ["sabbatical"]).cached is False
    assert embed_for(workspace.pk, ["sabbatical"]).cached is True
    assert embed_for(other.pk, ["sabbatical"]).cached is False


def test_a_failed_embedding_call_is_recorded_as_an_error(db, workspace, settings):
    from llmgateway import registry
    from llmgateway.embeddings import embed_for
    from llmgateway.metering import records
    from llmgateway.models import ModelConfig, UsageRecord

    ModelConfig.objects.create(
        name="dead-embed", kind="embedding", provider="openai-compatible", base_url="http://127.0.0.1:9/v1"
    )
    registry.forget_all()
    with pytest.raises(EmbeddingError):
        embed_for(workspace.pk, ["hello"], model="dead-embed", origin="retrieval")
    records.drain()
    assert list(UsageRecord.objects.values_list("origin", "model", "cache", "status")) == [
        ("retrieval", "dead-embed", "error", 502)
    ]


def test_embedding_models_are_added_with_their_kind_and_chat_models_refused(client, api_key, upstream):
    from django.core.management import call_command

    from llmgateway import registry

    call_command(
        "add_model", "vectors", "--kind", "embedding", "--base-url", upstream.base_url, "--upstream-model", "e"
    )
    call_command("add_model", "chatty", "--base-url", upstream.base_url, "--upstream-model", "c")
    registry.forget_all()
    ok = _post_embeddings(client, api_key[1], {"model": "vectors", "input": "hello"})
    assert ok.status_code == 200 and len(ok.json()["data"][0]["embedding"]) == upstream.embedding_dims
    refused = _post_embeddings(client, api_key[1], {"model": "chatty", "input": "hello"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "model_not_embedding" and "--kind embedding" in refused.text
    assert len(upstream.requests) == 1  # the chat model was never asked for vectors
    # The built-in offline chat model is a chat model too.
    offline = _post_embeddings(client, api_key[1], {"model": "offline", "input": "hello"})
    assert (offline.status_code, offline.json()["error"]["param"]) == (400, "model")
    assert offline.json()["error"]["code"] == "model_not_embedding"


def test_an_embedding_model_cannot_be_the_default_chat_model(db):
    from django.core.exceptions import ValidationError

    from llmgateway.models import ModelConfig

    with pytest.raises(ValidationError, match="default"):
        ModelConfig(name="vec", kind="embedding", provider="offline", is_default=True).full_clean()


def test_local_vectors_are_the_mean_of_each_texts_token_vectors_whatever_the_batch():
    import numpy as np

    from llmgateway.embeddings import _local_pooling, embed_locally

    tokenizer, table = _local_pooling()
    texts = ["Every three years a six-week paid sabbatical", "", "zzqx", "vacation vacation days", "Omarchy Linux"]
    expected = []
    for text in texts:
        ids = [i for word in text.split() for i in tokenizer.encode(word, add_special_tokens=False).ids]
        vector = table[ids].mean(axis=0) if ids else np.zeros(table.shape[1], dtype=np.float32)
        norm = np.linalg.norm(vector)
        expected.append(vector / norm if norm else vector)
    for batch_size in (1, 2, 64):
        assert np.allclose(embed_locally(texts, batch_size=batch_size), np.vstack(expected), atol=1e-5)


def test_an_embedding_model_is_refused_for_chat_with_a_400_naming_it(client, api_key, upstream):
    from django.core.management import call_command

    from llmgateway import gateway, registry

    call_command(
        "add_model", "vectors", "--kind", "embedding", "--base-url", upstream.base_url, "--upstream-model", "e"
    )
    registry.forget_all()
    body = {"model": "vectors", "messages": [{"role": "user", "content": "hello"}]}
    for stream in (False, True):
        response = client.post(
            "/v1/chat/completions",
            json.dumps({**body, "stream": stream}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
        )
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] == "model_not_chat" and error["param"] == "model"
        assert "vectors" in error["message"] and "embedding model" in error["message"]
    with pytest.raises(gateway.GatewayError) as raised:
        gateway.complete(api_key[0].workspace_id, body)
    assert raised.value.status == 400 and raised.value.code == "model_not_chat"
    assert upstream.requests == []  # the embedding endpoint was never sent a chat


def test_a_remote_model_goes_through_the_guarded_client(upstream, db, settings, monkeypatch):
    """Each connection's address is checked as for chat; an environment proxy is not used."""
    from llmgateway import embeddings, registry
    from llmgateway.models import ModelConfig
    from llmgateway.providers import http

    ModelConfig.objects.create(
        name="vecs", kind="embedding", provider="openai-compatible", base_url=upstream.base_url, upstream_model="e"
    )
    # The model was saved while private upstreams were allowed; its address is now refused on connect,
    # as after a DNS change to a private or metadata address (kept connections of earlier tests closed).
    http.reset()
    settings.LLM_ALLOW_PRIVATE_UPSTREAMS = False
    registry.forget_all()
    with pytest.raises(embeddings.EmbeddingError) as refused:
        embeddings.embed(["hello"], model="vecs")
    assert refused.value.status == 502 and "upstream address" in refused.value.message
    assert upstream.requests == []
    settings.LLM_ALLOW_PRIVATE_UPSTREAMS = True
    registry.forget_all()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    assert len(embeddings.embed(["hello"], model="vecs").vectors[0]) == upstream.embedding_dims
    assert upstream.requests == [{"model": "e", "input": ["hello"]}]


def test_dimensions_shorten_the_vectors_to_unit_length_and_more_than_the_model_has_is_a_400(openai_client):
    import openai

    full = openai_client.embeddings.create(model="local", input="sabbatical", encoding_format="float")
    short = openai_client.embeddings.create(model="local", input="sabbatical", encoding_format="float", dimensions=64)
    vector = short.data[0].embedding
    assert len(vector) == 64
    assert abs(sum(x * x for x in vector) - 1) < 1e-3
    scale = full.data[0].embedding[0] / vector[0]
    assert [x * scale for x in vector] == pytest.approx(full.data[0].embedding[:64], abs=1e-5)
    base64 = openai_client.embeddings.create(model="local", input="sabbatical", dimensions=64)
    assert base64.data[0].embedding == pytest.approx(vector, abs=1e-6)
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.embeddings.create(model="local", input="sabbatical", dimensions=LOCAL_DIMENSIONS + 1)
    assert caught.value.body["param"] == "dimensions"


@pytest.mark.parametrize("tokens", [[101, 2023, 102], [[101, 2023], [7592]]])
def test_token_ids_are_refused_with_a_400_that_says_to_send_text(openai_client, tokens):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.embeddings.create(model="local", input=tokens)
    assert (caught.value.body["param"], caught.value.code) == ("input", "token_input_unsupported")
    assert "check_embedding_ctx_length=False" in caught.value.message
