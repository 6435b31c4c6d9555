"""Cache controls a caller may send: a Cache-Control header, or the body's `cache` object."""

from dataclasses import dataclass

from django.conf import settings

from llmgateway.gateway.errors import bad_request as _bad


@dataclass(frozen=True)
class CacheControl:
    """no_cache: skip the lookup and refresh the entry; no_store: do not store; ttl: seconds to keep."""

    no_cache: bool = False
    no_store: bool = False
    ttl: int | None = None

    @classmethod
    def from_header(cls, value):
        tokens = {part.strip().lower() for part in (value or "").split(",")}
        return cls(no_cache="no-cache" in tokens, no_store="no-store" in tokens)

    @classmethod
    def from_body(cls, value):
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise _bad('`cache` must be an object like {"ttl": 600, "no-cache": true}.', "cache")
        known = {"ttl", "no-cache", "no_cache", "no-store", "no_store"}
        for name in value:
            if name not in known:
                raise _bad(f"Unknown cache option {name!r}; use ttl, no-cache or no-store.", f"cache.{name}")
        flags = {}
        for option in ("no-cache", "no-store"):
            raw = value.get(option, value.get(option.replace("-", "_"), False))
            if not isinstance(raw, bool):
                raise _bad(f"cache.{option} must be true or false.", f"cache.{option}")
            flags[option.replace("-", "_")] = raw
        ttl = value.get("ttl")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= settings.LLM_CACHE_MAX_TTL
        ):
            raise _bad(
                f"cache.ttl must be a whole number of seconds from 1 to {settings.LLM_CACHE_MAX_TTL}.", "cache.ttl"
            )
        return cls(ttl=ttl, **flags)

    @classmethod
    def coerce(cls, value):
        if value is None or isinstance(value, cls):
            return value or cls()
        if isinstance(value, str):
            return cls.from_header(value)
        return cls.from_body(value)

    def merge(self, other):
        return CacheControl(
            no_cache=self.no_cache or other.no_cache,
            no_store=self.no_store or other.no_store,
            ttl=other.ttl if other.ttl is not None else self.ttl,
        )
