"""The completion cache: key builders, TTLs, the cached payload and generations.

An answer is cached under SHA-256 of a canonical encoding of everything that
can change it (the model and its upstream, messages, sampling parameters,
tools, response format, seed, stop, and any extra key material the caller
adds, such as an assistant's version) plus the workspace id. Fields that do
not change the answer (`stream`, `stream_options`, `user`, `metadata`, the
`cache` control object) are left out, and JSON key order, `1` versus `1.0`
and parameters left at their default do not matter.

Each workspace has a generation number (CacheGeneration, cached with the
workspace's policy). An entry records the generation it was stored under and
counts only while that is still current, so clearing a workspace is one
increment, with no scan of Redis.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

from django.conf import settings

import audit
from llmgateway.cache.records import ReadThrough, nearly_due
from llmgateway.cache.store import make_key

# TTLs (seconds).
WORKSPACE_INFO_TTL = 5 * 60  # policy + generation; dropped on every change
MODEL_INFO_TTL = 5 * 60  # model configuration; dropped on every change
# Resolved API key: checked against the database again after this long, whatever
# happened to invalidations meanwhile (see auth.py); also dropped on every change.
API_KEY_TTL = 5
FLIGHT_TTL = 120  # chunks of an in-flight completion, kept after the last one for late followers

# Compact JSON text, as entries, flight events and /v1 answers are written (one encoder, made once).
compact_json = json.JSONEncoder(separators=(",", ":")).encode

# Request fields that never change the answer.
NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata", "store", "cache", "service_tier"})
# Defaults that mean the same as leaving the field out.
DEFAULTS = {"temperature": 1, "top_p": 1, "n": 1, "presence_penalty": 0, "frequency_penalty": 0}


def default_ttl():
    return settings.LLM_CACHE_TTL


def _normalise(value):
    """Floats that are whole numbers compare equal to ints (1.0 == 1); strings and order are kept."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def canonical_request(request, model_identity, extra=None):
    """The part of a request that changes the answer, as canonical JSON bytes."""
    material = {}
    for name, value in request.items():
        if name in NOT_IN_KEY or value is None:
            continue
        value = _normalise(value)
        if name in DEFAULTS and value == DEFAULTS[name]:
            continue
        if name == "stop" and isinstance(value, str):
            value = [value]
        material[name] = value
    material["model"] = model_identity
    if extra:
        material["_extra"] = _normalise(extra)
    # surrogatepass: a lone surrogate (valid JSON "\ud800") still makes a key instead of an error.
    return json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def completion_key(workspace_id, request, model_identity, extra=None):
    """Cache key of a completion: one workspace can never read another's answer."""
    digest = hashlib.sha256(f"ws:{workspace_id}\n".encode() + canonical_request(request, model_identity, extra))
    return make_key(f"gw:c:{workspace_id}:{digest.hexdigest()}")


def flight_key(completion_key_):
    return completion_key_ + ":flight"


def lock_key(completion_key_):
    return completion_key_ + ":lock"


def workspace_info_key(workspace_id):
    # "wsinfo", not the earlier "ws": a process of an earlier version cannot read a record with loaded_at.
    return make_key(f"gw:wsinfo:{workspace_id}")


def model_info_key(name):
    return make_key(f"gw:model:{hashlib.sha256(name.encode()).hexdigest()[:32]}")


def api_key_key(key_hash):
    return make_key(f"gw:key:{key_hash}")


def stats_key(workspace_id=None):
    return make_key(f"gw:stats:{'all' if workspace_id is None else workspace_id}")


def is_deterministic(request):
    return request.get("temperature") in (0, 0.0) or request.get("seed") is not None


def response_json(response):
    """A response as compact JSON bytes, as a cache entry, the flight's last event and /v1's answer hold it."""
    return compact_json(response).encode()


@dataclass(frozen=True)
class CachedCompletion:
    """What a cache entry holds: the response, and the chunks when it was streamed."""

    response: dict
    generation: int
    model: str
    cost: float = 0.0
    upstream_ms: float = 0.0
    stored_at: float = field(default_factory=time.time)
    chunks: tuple | None = None

    def dumps(self):
        # Not dataclasses.asdict: it would deep-copy the whole response first.
        rest = {
            "generation": self.generation,
            "model": self.model,
            "cost": self.cost,
            "upstream_ms": self.upstream_ms,
            "stored_at": self.stored_at,
            "chunks": list(self.chunks) if self.chunks is not None else None,
        }
        # The response's JSON when it is already made (`response_json`), the rest around it: the same bytes.
        return b'{"response":' + self.response_json() + b"," + compact_json(rest)[1:].encode()

    @classmethod
    def loads(cls, raw):
        data = json.loads(raw)
        chunks = data.pop("chunks", None)
        return cls(chunks=tuple(chunks) if chunks is not None else None, **data)

    def response_json(self):
        """The response as compact JSON bytes, made once per entry (a remembered entry answers many hits)."""
        body = self.__dict__.get("_response_json")
        if body is None:
            body = response_json(self.response)
            object.__setattr__(self, "_response_json", body)
        return body

    def with_response_json(self, body):
        """This entry, its response's JSON (`response_json`) already made by the caller (compact, as bytes)."""
        object.__setattr__(self, "_response_json", body)
        return self

    def response_as(self, id_):
        """The response under another completion id (a copy: the entry is shared between requests)."""
        return {**self.response, "id": id_} if "id" in self.response else self.response

    def response_json_as(self, id_):
        """`response_json()` under another completion id: the stored bytes with the id swapped when it leads them."""
        body = self.response_json()
        head = self.__dict__.get("_id_head")
        if head is None:
            old = self.response.get("id")
            head = b'{"id":' + compact_json(old).encode() if isinstance(old, str) else b""
            object.__setattr__(self, "_id_head", head)
        if not head:
            return body
        if body.startswith(head):
            return b'{"id":' + compact_json(id_).encode() + body[len(head) :]
        return response_json(self.response_as(id_))


# Parsed entries, by their bytes (never stale): a popular answer is parsed once per process, not once per hit.
# Entries are shared between requests and read-only. Large ones are parsed each time (memory).
PARSED_ENTRY_MAX = 16 * 1024


@lru_cache(maxsize=128)
def _parsed_entry(raw):
    return CachedCompletion.loads(raw)


def parsed_entry(raw):
    """The CachedCompletion in `raw`."""
    return _parsed_entry(raw) if len(raw) <= PARSED_ENTRY_MAX else CachedCompletion.loads(raw)


@dataclass(frozen=True)
class WorkspaceInfo:
    """What the request path needs to know about a workspace, kept in the cache."""

    id: int
    cache_policy: str
    generation: int
    archived: bool = False
    # {"workspace": {name: n}, "member": {name: n}, "users": {"user id": {name: n}}}: the limits
    # in force (staff defaults filled in), budgets in micro-dollars; see metering/limits.py.
    limits: dict | None = None
    # time.time() of the database read (0: not known): renewed before its TTL ends (records.nearly_due).
    loaded_at: float = field(default=0.0, compare=False)

    def dumps(self):
        return json.dumps(asdict(self)).encode()

    @classmethod
    def loads(cls, raw):
        # Fields this version does not know (written by a newer one) are left out.
        return cls(**{k: v for k, v in json.loads(raw).items() if k in _WORKSPACE_FIELDS})


_WORKSPACE_FIELDS = frozenset(f.name for f in fields(WorkspaceInfo))


def limits_in_force(workspace_id):
    """The workspace's limits as the request path needs them, staff defaults filled in field by field."""
    from django.db.models import Q

    from llmgateway.models import Limit

    rows = Limit.objects.filter(
        Q(workspace_id=workspace_id) | Q(workspace__isnull=True), kind__in=["workspace", "user"]
    )
    parts = {}
    for row in rows.order_by("workspace_id").values("kind", "workspace_id", "user_id", *Limit.FIELDS):
        values = Limit(**{name: row[name] for name in Limit.FIELDS}).as_dict()
        if row["kind"] == "workspace":
            # Defaults (no workspace) come first, the workspace's own values over them.
            parts["workspace"] = {**parts.get("workspace", {}), **values}
        elif row["user_id"] is None:
            parts["member"] = {**parts.get("member", {}), **values}
        else:
            parts.setdefault("users", {})[str(row["user_id"])] = values
    return {name: value for name, value in parts.items() if value} or None


def _workspace_from_database(workspace_id):
    from llmgateway.models import CacheGeneration
    from workspaces.models import Workspace

    loaded_at = time.time()  # before the queries: a change after this is seen on the next read
    row = Workspace.objects.filter(pk=workspace_id).values("cache_policy", "archived").first()
    if row is None:
        return None
    generation = CacheGeneration.objects.filter(workspace_id=workspace_id).values_list("generation", flat=True).first()
    return WorkspaceInfo(
        id=workspace_id,
        cache_policy=row["cache_policy"],
        generation=generation or 0,
        archived=row["archived"],
        limits=limits_in_force(workspace_id),
        loaded_at=loaded_at,
    )


# Each workspace's policy and generation, read by every completion (a hit reads it with the entry).
workspace_info = ReadThrough(
    workspace_info_key,
    WorkspaceInfo.loads,
    _workspace_from_database,
    WORKSPACE_INFO_TTL,
    renew=nearly_due(WORKSPACE_INFO_TTL),
)


def load_workspace_info(workspace_id):
    """From the database, then cached; None when the workspace does not exist."""
    return workspace_info.load(workspace_id)


def forget_workspace(workspace_id):
    workspace_info.forget(workspace_id)


def clear_workspace(workspace_id):
    """Hide every answer cached for the workspace: raise its generation."""
    from django.db.models import F

    from llmgateway.models import CacheGeneration

    CacheGeneration.objects.get_or_create(workspace_id=workspace_id)
    CacheGeneration.objects.filter(workspace_id=workspace_id).update(generation=F("generation") + 1)
    forget_workspace(workspace_id)
    audit.record(None, "workspace.cache_clear", workspace=workspace_id)


def clear_all():
    """Clear every workspace's cache; returns how many workspaces were cleared."""
    from workspaces.models import Workspace

    ids = list(Workspace.objects.values_list("pk", flat=True))
    for workspace_id in ids:
        clear_workspace(workspace_id)
    return len(ids)
