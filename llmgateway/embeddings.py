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
"""

import logging
import threading
from dataclasses import dataclass

import httpx
from django.conf import settings

log = logging.getLogger("llmgateway.embeddings")

LOCAL_NAME = "local"
LOCAL_MODEL = "wordllama-l2"
LOCAL_DIMENSIONS = 256
MAX_BATCH = 256
MAX_INPUT_CHARS = 8000  # per text: about 2,000 tokens, within every common embedding model's window

_local = None
_local_lock = threading.Lock()


class EmbeddingError(Exception):
    """The embedding model failed; `message` is for people, `status` for an HTTP answer."""

    def __init__(self, message, status=502):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Embedded:
    vectors: object  # numpy.ndarray (n, dims), float32, unit rows
    model: str
    tokens: int

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

    from llmgateway.providers.openai_compat import OpenAICompatibleProvider

    provider = OpenAICompatibleProvider(spec)
    parts = urlsplit(spec.base_url)
    url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/embeddings"))
    body = {"model": spec.upstream_model or spec.name, "input": texts}
    try:
        response = httpx.post(url, json=body, headers=provider._headers(), timeout=min(spec.timeout, 60))
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
