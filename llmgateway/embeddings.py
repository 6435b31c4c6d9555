"""Embeddings: text to vectors, through the gateway's models like every model call.

    result = embed(["first text", "second"], model=None)   # Embedded, or raises EmbeddingError
    result.vectors        # numpy float32 array, one unit-length row per text
    result.model          # "local:wordllama-l2-256" — stored with every vector; dims included
    result.tokens         # an estimate of the input tokens

`model` (or the `LLM_EMBEDDING_MODEL` setting when None) names a configured
OpenAI-compatible model, called at `{base_url}/embeddings`; empty means the
built-in local model: static word embeddings shipped inside the `wordllama`
package (256 dimensions, numpy only, loaded from the package's own files,
never downloaded). Vectors are normalised to unit length, so a dot product
is the cosine similarity.

`model` identity strings end in the dimension count, so vectors of two
models (or of one model whose dimension changed) are never compared.

Callers with a workspace go through the gateway like every model call:

    result = embed_for(workspace_id, texts, origin="retrieval", user_id=…, api_key_id=…)

caches each text's vector in the gateway's store (per workspace and model;
`cache=False` for ingestion, whose texts are read once) and writes a usage
record (origin, model, tokens, cost, hit or miss, latency) through the
metering buffer, like a completion.
"""

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass

import httpx
from django.conf import settings

from llmgateway.metering import embedding as metering_embedding

log = logging.getLogger("llmgateway.embeddings")

LOCAL_NAME = "local"
LOCAL_MODEL = "wordllama-l2"
LOCAL_DIMENSIONS = 256
MAX_BATCH = 256
MAX_INPUT_CHARS = 8000  # per text: about 2,000 tokens, within every common embedding model's window
CACHE_TTL = 7 * 24 * 3600  # a text's vector: the same model gives the same vector

_local = None
_local_lock = threading.Lock()


class EmbeddingError(Exception):
    """The embedding model failed; `message` is for people, `status` for an HTTP answer."""

    def __init__(self, message, status=502, refusal=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.refusal = refusal  # the metering limits.Refusal behind a 429


@dataclass(frozen=True)
class Embedded:
    vectors: object  # numpy.ndarray (n, dims), float32, unit rows
    model: str
    tokens: int
    cached: bool = False  # every vector came from the gateway's cache
    ratelimit: dict | None = None  # the x-ratelimit-* headers, when limits apply (metering/embedding.py)
    input_tokens: int | None = None  # the input's tokens, cached texts' included (what the API reports)

    @property
    def dims(self):
        return int(self.vectors.shape[1]) if len(self.vectors.shape) == 2 else 0


def local_model():
    """The built-in static model, loaded once per process from the wordllama package's files."""
    global _local
    if _local is None:
        with _local_lock:
            if _local is None:
                from pathlib import Path

                import wordllama
                from wordllama import WordLlama

                _local = WordLlama.load(
                    cache_dir=Path(wordllama.__file__).parent, disable_download=True, dim=LOCAL_DIMENSIONS
                )
    return _local


def model_name(model=None):
    """The configured embedding model's name; '' is the built-in local model."""
    return settings.LLM_EMBEDDING_MODEL if model is None else model


def identity(name, dims, upstream=""):
    base = f"{LOCAL_NAME}:{LOCAL_MODEL}" if not name else f"{name}:{upstream or name}"
    return f"{base}-{dims}"[:120]


def _normalise(vectors):
    import numpy as np

    vectors = np.nan_to_num(np.asarray(vectors, dtype=np.float32))
    if vectors.ndim != 2:
        raise EmbeddingError("The embedding model answered without vectors.")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


_pooling = None


def _local_pooling():
    """(tokenizer without padding, float32 token vectors) of the local model, made once per process."""
    global _pooling
    if _pooling is None:
        import numpy as np
        from tokenizers import Tokenizer

        model = local_model()
        tokenizer = Tokenizer.from_str(model.tokenizer.to_str())
        tokenizer.no_padding()
        _pooling = tokenizer, np.ascontiguousarray(model.embedding, dtype=np.float32)
    return _pooling


# Token ids of each word seen, so a passage costs dictionary look-ups rather than a tokenizer run.
_word_ids = {}
WORD_CACHE_LIMIT = 200_000


def _token_ids(tokenizer, words):
    """Token ids of each word (whitespace-separated, as the model's tokenizer sees it), memoised."""
    missing = [w for w in dict.fromkeys(words) if w not in _word_ids]
    if missing:
        if len(_word_ids) + len(missing) > WORD_CACHE_LIMIT:
            _word_ids.clear()
        for word, item in zip(missing, tokenizer.encode_batch(missing, add_special_tokens=False), strict=True):
            _word_ids[word] = item.ids
    return _word_ids


def embed_locally(texts, batch_size=256):
    """Unit vectors from the built-in local model: the mean of the texts' token vectors.

    A static model has no context: a text's vector is the mean of its tokens' vectors, and
    tokens never span white space, so each distinct word is tokenized once and remembered
    (several times faster than tokenizing every passage whole). A text with no known word
    gets a zero vector.
    """
    import numpy as np

    tokenizer, table = _local_pooling()
    texts = list(texts)
    out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
    last = table.shape[0] - 1
    for start in range(0, len(texts), batch_size):
        batch = [text.split() for text in texts[start : start + batch_size]]
        known = _token_ids(tokenizer, [word for words in batch for word in words])
        for offset, words in enumerate(batch):
            ids = [i for word in words for i in known.get(word) or _token_ids(tokenizer, [word])[word]]
            if ids:
                # One text's token vectors at a time: small enough to stay in the processor's cache.
                out[start + offset] = table[np.clip(np.asarray(ids, dtype=np.int64), 0, last)].mean(axis=0)
    return _normalise(out)


def estimate_tokens(texts):
    return sum((len(t) + 3) // 4 for t in texts)


def embed(texts, model=None):
    """Vectors for a list of texts (in batches); raises EmbeddingError."""
    import numpy as np

    texts = [(t or " ")[:MAX_INPUT_CHARS] for t in texts]
    name = model_name(model)
    if not texts:
        return Embedded(np.zeros((0, LOCAL_DIMENSIONS), dtype=np.float32), identity(name, LOCAL_DIMENSIONS), 0)
    if not name:
        vectors = embed_locally(texts)
        return Embedded(vectors, identity(name, vectors.shape[1]), estimate_tokens(texts))
    from llmgateway import registry

    spec = registry.get_spec(name)
    if spec is None:
        raise EmbeddingError(f"The embedding model “{name}” is not configured.", status=400)
    if spec.kind != "embedding" and spec.provider != "offline":
        raise EmbeddingError(
            f"“{name}” is a chat model; configure an embedding model (add_model … --kind embedding).", status=422
        )
    if spec.provider == "offline":
        vectors = embed_locally(texts)
        return Embedded(vectors, identity("", vectors.shape[1]), estimate_tokens(texts))
    parts, tokens = [], 0
    for start in range(0, len(texts), MAX_BATCH):
        batch, used = _remote(spec, texts[start : start + MAX_BATCH])
        parts.append(batch)
        tokens += used
    vectors = _normalise(np.concatenate(parts))
    dims = {len(p[0]) for p in parts if len(p)}
    if len(dims) > 1:
        raise EmbeddingError("The embedding model answered vectors of different lengths.")
    return Embedded(vectors, identity(spec.name, vectors.shape[1], spec.upstream_model), tokens)


def _remote(spec, texts):
    """One call to an OpenAI-compatible /embeddings endpoint: (vectors in input order, prompt tokens)."""
    from urllib.parse import urlsplit, urlunsplit

    from llmgateway.providers import http
    from llmgateway.providers.openai_compat import OpenAICompatibleProvider

    provider = OpenAICompatibleProvider(spec)
    parts = urlsplit(spec.base_url)
    url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/embeddings"))
    body = {"model": spec.upstream_model or spec.name, "input": texts}
    # The guarded client of chat completions: every connection's address is checked (no private,
    # link-local or metadata address unless allowed), no environment proxy, one deadline for the whole call.
    until = time.monotonic() + min(spec.timeout, 60)
    try:
        response = http.post_json(url, headers=provider._headers(), body=body, until=until)
    except http.ProviderError as exc:  # the address refused
        raise EmbeddingError(str(exc), status=exc.status or 502) from None
    except httpx.TimeoutException:
        raise EmbeddingError(f"The embedding model “{spec.name}” did not answer in time.", status=504) from None
    except httpx.HTTPError as exc:
        raise EmbeddingError(
            f"The embedding model “{spec.name}” could not be reached ({type(exc).__name__})."
        ) from None
    if response.status_code != 200:
        log.warning("embedding model %s answered %s", spec.name, response.status_code)
        raise EmbeddingError(f"The embedding model “{spec.name}” answered with an error (HTTP {response.status_code}).")
    try:
        payload = response.json()
        rows = sorted(payload["data"], key=lambda row: row.get("index", 0))
        vectors = [[float(x) for x in row["embedding"]] for row in rows]
        used = int((payload.get("usage") or {}).get("prompt_tokens") or estimate_tokens(texts))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise EmbeddingError(f"The embedding model “{spec.name}” answered something that is not embeddings.") from None
    if len(vectors) != len(texts) or not vectors or not vectors[0]:
        raise EmbeddingError(
            f"The embedding model “{spec.name}” answered {len(vectors)} vectors for {len(texts)} texts."
        )
    return vectors, used


def _spec_identity(name, embedding_only=False):
    """What a cached vector depends on: the model's configuration (upstream, address), '' for the local model.

    embedding_only: a chat model is refused (422), the built-in offline one too (the API's callers).
    """
    if not name:
        return f"{LOCAL_NAME}:{LOCAL_MODEL}"
    from llmgateway import registry

    spec = registry.get_spec(name)
    if spec is None:
        raise EmbeddingError(f"The embedding model “{name}” is not configured.", status=400)
    if embedding_only and spec.kind != "embedding":
        raise EmbeddingError(
            f"“{name}” is a chat model; configure an embedding model (add_model … --kind embedding).", status=422
        )
    return spec.identity


def cache_key(workspace_id, identity, text):
    from llmgateway.cache.store import make_key

    digest = hashlib.sha256(f"{identity}\0{text}".encode()).hexdigest()
    return make_key(f"gw:emb:{workspace_id}:{digest}")


def _pack(model, vector):
    import numpy as np

    return model.encode() + b"\0" + np.asarray(vector, dtype="<f4").tobytes()


def _unpack(raw):
    import numpy as np

    if not isinstance(raw, bytes | bytearray) or b"\0" not in raw:
        return None, None
    model, _, data = bytes(raw).partition(b"\0")
    if not data or len(data) % 4:
        return None, None
    return model.decode(errors="replace"), np.frombuffer(data, dtype="<f4").astype(np.float32)


def _price(name, tokens):
    """Micro-dollars for `tokens` input tokens of the named model (0 for the local model)."""
    if not name:
        return 0
    from llmgateway import registry

    spec = registry.get_spec(name)
    return math.ceil(spec.cost({"prompt_tokens": tokens}) * 1_000_000) if spec is not None else 0


def _meter(workspace_id, model, outcome, status, tokens, cost, started, user_id, api_key_id, assistant_id, origin):
    """One usage record for an embedding call, in the same buffer as completions' (off with the no-op hook)."""
    from llmgateway import usage

    if type(usage.hook._get()) is usage.UsageHook:
        return
    from llmgateway.metering import records

    records.add(
        {
            "id": records.new_id(),
            "ws": workspace_id,
            "u": user_id,
            "k": api_key_id,
            "a": assistant_id,
            "o": origin[:16],
            "m": model,
            "pt": tokens,
            "ct": 0,
            "c": cost,
            "h": outcome,
            "s": status,
            "l": round((time.perf_counter() - started) * 1000, 2),
            "t": time.time(),
        }
    )


def embed_for(
    workspace_id,
    texts,
    model=None,
    *,
    origin="embeddings",
    user_id=None,
    api_key_id=None,
    assistant_id=None,
    cache=True,
    key_limits=None,
    embedding_only=False,
):
    """`embed()` as a gateway call of a workspace: cached per text (unless cache=False) and metered.

    embedding_only: refuse chat models, the built-in offline one included (EmbeddingError 422), as the API does.

    A call whose every text is cached is a hit (no upstream call, no tokens spent); otherwise
    only the missing texts are sent upstream. Vectors of different models are never mixed: a
    cached vector of another model identity counts as missing.
    """
    import numpy as np

    started = time.perf_counter()
    texts = [(t or " ")[:MAX_INPUT_CHARS] for t in texts]
    name = model_name(model)
    label = name or LOCAL_NAME
    try:
        identity = _spec_identity(name, embedding_only)
    except EmbeddingError as exc:
        status = 404 if exc.status == 400 else exc.status
        _meter(workspace_id, label, "error", status, 0, 0, started, user_id, api_key_id, assistant_id, origin)
        raise
    store = None
    found = [None] * len(texts)
    models = set()
    if cache and texts:
        from llmgateway.cache.store import get_store

        store = get_store()
        keys = [cache_key(workspace_id, identity, t) for t in texts]
        for index, raw in enumerate(store.get_many(keys)):
            model_id, vector = _unpack(raw)
            if vector is not None:
                found[index] = vector
                models.add(model_id)
        if len(models) > 1:  # entries of two model versions: trust none of them
            found, models = [None] * len(texts), set()
    missing = [i for i, v in enumerate(found) if v is None]
    found_cached = [v is not None for v in found]
    ticket = _admit(
        workspace_id,
        label,
        name,
        [texts[i] for i in missing],
        started,
        user_id,
        api_key_id,
        key_limits,
        assistant_id,
        origin,
    )
    tokens = 0
    model_id = next(iter(models), "")
    if missing:
        try:
            fresh = embed([texts[i] for i in missing], model=name)
        except EmbeddingError as exc:
            metering_embedding.settle(workspace_id, ticket, 0, 0)
            _meter(workspace_id, label, "error", exc.status, 0, 0, started, user_id, api_key_id, assistant_id, origin)
            raise
        except BaseException:
            metering_embedding.settle(workspace_id, ticket, 0, 0)
            raise
        if model_id and fresh.model != model_id:  # the model changed under the cache: all of it afresh
            metering_embedding.settle(workspace_id, ticket, 0, 0)
            return embed_for(
                workspace_id,
                texts,
                model,
                origin=origin,
                user_id=user_id,
                api_key_id=api_key_id,
                assistant_id=assistant_id,
                cache=False,
                key_limits=key_limits,
            )
        model_id, tokens = fresh.model, fresh.tokens
        for position, index in enumerate(missing):
            found[index] = fresh.vectors[position]
        if store is not None:
            store.batch(
                [
                    ("set", cache_key(workspace_id, identity, texts[i]), _pack(model_id, found[i]), CACHE_TTL)
                    for i in missing
                ]
            )
    dims = found[0].shape[0] if found else LOCAL_DIMENSIONS
    vectors = np.vstack(found).astype(np.float32) if found else np.zeros((0, dims), dtype=np.float32)
    outcome = ("miss" if cache else "bypass") if missing else "hit"
    cost = _price(name, tokens)
    metering_embedding.settle(workspace_id, ticket, tokens, cost)
    _meter(workspace_id, label, outcome, 200, tokens, cost, started, user_id, api_key_id, assistant_id, origin)
    return Embedded(
        vectors,
        model_id or identity_for_empty(name),
        tokens,
        cached=bool(texts) and not missing,
        ratelimit=ticket.headers() if ticket is not None else None,
        # A cached text's tokens were counted when it was embedded: estimated here, as OpenAI reports every input's.
        input_tokens=tokens + estimate_tokens([text for i, text in enumerate(texts) if found_cached[i]]),
    )


def _admit(workspace_id, label, name, texts, started, user_id, api_key_id, key_limits, assistant_id, origin):
    """The call's reservation against its limits (metering/embedding.py), or EmbeddingError(429) naming the limit."""
    tokens = estimate_tokens(texts)
    try:
        return metering_embedding.admit(
            origin, workspace_id, user_id, api_key_id, key_limits, tokens, _price(name, tokens) if tokens else 0
        )
    except metering_embedding.limits.Refusal as refusal:
        _meter(workspace_id, label, "refused", 429, 0, 0, started, user_id, api_key_id, assistant_id, origin)
        raise EmbeddingError(refusal.message(), status=429, refusal=refusal) from None


def identity_for_empty(name):
    return identity(name, LOCAL_DIMENSIONS)
