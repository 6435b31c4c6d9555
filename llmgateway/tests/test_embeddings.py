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
        name="remote-embed", provider="openai-compatible", base_url=upstream.base_url, upstream_model="e"
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
        name="dead-embed", provider="openai-compatible", base_url=f"http://127.0.0.1:{free_port()}/v1"
    )
    registry.forget_all()
    with pytest.raises(EmbeddingError, match="could not be reached"):
        embed(["x"], model="dead-embed")


def test_a_text_with_no_known_word_gets_a_finite_vector():
    result = embed(["\u2603\u2603", "words"])
    assert result.vectors.shape == (2, LOCAL_DIMENSIONS)
    assert all(abs(float(x)) < 10 for x in result.vectors[0])
