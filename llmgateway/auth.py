"""Workspace API keys: bearer tokens checked through the cache.

A key is resolved from the database (it must be unrevoked, its creator
active and still a member of the key's workspace: one query) and then kept
in the cache as a `KeyInfo` stamped with when it was read. Expiry is checked
on every request against the cached info. A record counts for API_KEY_TTL
(5 s) after it was read, so whatever happened meanwhile (a revocation while
Redis was paused or down, a queryset `update()` that sent no signal, a
membership deleted in SQL) a key that lost its rights fails within 5 s.
Each key in use thus costs about one query per 4 s per worker process: in
its last second a record is read again after a response, once per process
(`KeyInfo.nearly_due`), so the requests that arrive together when it falls
due do not all query the database; the new record is shared in Redis, and a
hit between two checks makes no query. Revoking a
key, deactivating its creator, changing the creator's membership or editing
the key also deletes the cached info, so with Redis answering the very next
request already fails. Records read before this process last saw Redis fail
are read again: an invalidation may have been lost then.

`ApiKeyAuthentication` lets the whole REST API accept keys: the request's
user is the key's creator, limited to the key's workspace
(`restrict_to_workspace`), and the key's scopes must allow the method.
"""

import json
import re
import time
from dataclasses import asdict, dataclass

from rest_framework import authentication, exceptions

from llmgateway.cache.entries import API_KEY_TTL, api_key_key
from llmgateway.cache.records import ReadThrough
from llmgateway.cache.store import get_store
from llmgateway.models import API_KEY_PREFIX, hash_key

TOKEN_RE = re.compile(r"^gw_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class KeyInfo:
    id: int
    workspace_id: int
    user_id: int
    scopes: tuple
    expires_at: float | None = None
    checked_at: float = 0.0  # time.time() when read from the database
    limits: dict | None = None  # the key's own limits (metering), budgets in micro-dollars

    def current(self, unreliable_before=0.0):
        """Still good to use without asking the database again?"""
        return self.checked_at > unreliable_before and time.time() - self.checked_at < API_KEY_TTL

    def nearly_due(self):
        """Within a second of its next check: read again early, while it still counts (records.ReadThrough)."""
        return time.time() - self.checked_at >= API_KEY_TTL - 1

    def expired(self):
        return self.expires_at is not None and self.expires_at <= time.time()

    def allows(self, scope):
        return scope in self.scopes

    def dumps(self):
        return json.dumps(asdict(self)).encode()

    @classmethod
    def loads(cls, raw):
        data = json.loads(raw)
        data["scopes"] = tuple(data["scopes"])
        return cls(**data)


class KeyRejected(Exception):
    """The token is not a usable key; the message is safe to show."""


def bearer_token(header):
    """The token from an Authorization header value, or None if it is not `Bearer ...`."""
    if not header or len(header) > 512:
        return None if not header else ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def token_hash(token):
    """The key hash of a well-formed token, else None (no database or cache for junk)."""
    if not token or not TOKEN_RE.match(token):
        return None
    return hash_key(token)


def _key_from_database(digest):
    """The KeyInfo of a usable key (unrevoked, its creator active and still a member), or None."""
    from django.db.models import Exists, OuterRef

    from llmgateway.models import ApiKey, Limit
    from workspaces.models import Membership

    limit_fields = Limit.FIELDS
    checked_at = time.time()  # before the query: a change after this is seen on the next check
    key = (
        ApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True, created_by__is_active=True)
        .filter(
            Exists(Membership.objects.filter(workspace_id=OuterRef("workspace_id"), user_id=OuterRef("created_by_id")))
        )
        .values("id", "workspace_id", "created_by_id", "scopes", "expires_at", *[f"limit__{n}" for n in limit_fields])
        .first()
    )
    if key is None:
        return None
    limits = Limit(**{name: key[f"limit__{name}"] for name in limit_fields}).as_dict()
    return KeyInfo(
        id=key["id"],
        workspace_id=key["workspace_id"],
        user_id=key["created_by_id"],
        scopes=tuple(key["scopes"] or ()),
        expires_at=key["expires_at"].timestamp() if key["expires_at"] else None,
        checked_at=checked_at,
        limits=limits or None,
    )


# A record counts until it is API_KEY_TTL old, and never past a Redis failure this process saw after reading it.
key_records = ReadThrough(
    api_key_key,
    KeyInfo.loads,
    _key_from_database,
    API_KEY_TTL,
    fresh=lambda info: info.current(get_store().unreliable_before()),
    renew=KeyInfo.nearly_due,
)


def info_from_cached(raw, digest=None):
    """(found, info): (False, None) when not cached or due for a check; (True, None) for a key known to be unusable.

    digest: the key's, so that a record nearly due is read again after the response (once per process).
    """
    return key_records.from_cached(raw, digest)


def load_key(digest):
    """KeyInfo from the database (then cached), or None when the key is unknown or unusable."""
    return key_records.load(digest)


def check(info, scope):
    if info is None:
        raise KeyRejected("Invalid API key.")
    if info.expired():
        raise KeyRejected("This API key has expired.")
    if scope and not info.allows(scope):
        raise KeyRejected(f"This API key lacks the {scope!r} scope.")
    return info


def resolve(token, scope=None):
    """KeyInfo for a bearer token (through the cache); raises KeyRejected."""
    digest = token_hash(token)
    if digest is None:
        raise KeyRejected("Invalid API key.")
    found, info = info_from_cached(get_store().get_many([api_key_key(digest)])[0], digest)
    if not found:
        info = load_key(digest)
    return check(info, scope)


def forget_keys(hashes):
    """Drop cached key info, so the next request re-reads the database (if Redis is down, the 5 s check does it)."""
    hashes = list(hashes)
    if hashes:
        get_store().invalidate(*[api_key_key(h) for h in hashes])


def forget_keys_of(user_id, workspace_id=None):
    from llmgateway.models import ApiKey

    keys = ApiKey.objects.filter(created_by_id=user_id)
    if workspace_id is not None:
        keys = keys.filter(workspace_id=workspace_id)
    forget_keys(keys.values_list("key_hash", flat=True))


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication with `Authorization: Bearer gw_...` workspace keys.

    Safe methods need the key's `read` scope, others `write`. The user is the
    key's creator, restricted to the key's workspace.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        token = bearer_token(authentication.get_authorization_header(request).decode("latin-1"))
        if token is None:
            return None
        scope = "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"
        try:
            info = resolve(token, scope)
        except KeyRejected as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        from django.contrib.auth import get_user_model

        from workspaces.permissions import restrict_to_workspace

        user = get_user_model().objects.filter(pk=info.user_id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        restrict_to_workspace(user, info.workspace_id)
        return user, info

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


__all__ = ["API_KEY_PREFIX", "ApiKeyAuthentication", "KeyInfo", "KeyRejected", "resolve"]
