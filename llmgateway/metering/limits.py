"""Limits on completions, checked and counted atomically in the store: Redis (Lua) or this host's shared cache.

Each completion is checked against every scope that has limits: its
workspace, its user in that workspace, and its API key. Per scope:

- requests per minute and tokens per minute: token buckets that hold the
  limit and refill it over a minute (a burst of `rpm` requests, then one
  every 60/rpm seconds);
- concurrent requests: the requests under way (each entry expires after its
  deadline, so a worker that died frees its slots);
- money per day and per month: what was spent and reserved in the period
  (the server's TIME_ZONE), in micro-dollars.

`admit()` reserves the request's estimate (1 request; its tokens and cost as
the estimate, none for a cache hit unless USAGE_HITS_COUNT_TOWARDS_SPEND) in
every scope at once, or refuses without changing anything; `settle()`
replaces the estimate by what was used and frees the concurrency slot. A
request is admitted while some of the limit is left, so N concurrent
requests never spend more than the budget plus one request's estimate. The
check and the reservation are one Lua script, so this holds across workers
and hosts; without Redis the same steps run under the host's file lock.

A budget counter missing from the store (a new period, or Redis restarted)
is seeded from the usage rows of the period before the first paid request.

When the store does not answer (Redis down or stalled), requests are
admitted without their limits: an outage of Redis must not stop the
gateway, and the limits cannot hold across workers without it anyway. Each
such request counts in `corporate_limits_unchecked_total` (/metrics) and a
process logs one warning a minute while it lasts. With
USAGE_LIMITS_WITHOUT_STORE=refuse they are refused instead (503, Retry-After:
REDIS_RETRY_SECONDS), for those who would rather stop than spend unseen. The cache and the usage
buffer are down too, so the records wait in the process's memory until the
store is back (records.py). When Redis is back, the request and token
buckets start full, the concurrency slots empty, and the budgets are seeded
again from the usage rows, so what was spent during the outage counts.
"""

import logging
import math
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from django.utils import timezone

from llmgateway.cache.store import LocalStore, RedisStore, get_store, make_key
from llmgateway.metering.money import micro_dollars_text

log = logging.getLogger("llmgateway.metering")

WINDOW_MS = 60_000
NAMES = ("rpm", "tpm", "max_concurrent", "daily_budget", "monthly_budget")
LIMIT_WORDS = {
    "requests": "requests per minute",
    "tokens": "tokens per minute",
    "concurrent": "concurrent requests",
    "day": "daily budget",
    "month": "monthly budget",
}
SCOPE_WORDS = {"workspace": "this workspace", "user": "your account in this workspace", "key": "this API key"}


@dataclass(frozen=True)
class Scope:
    kind: str  # workspace | user | key
    ident: str  # "7", "7:12", "31"
    limits: dict  # {name: int}, budgets in micro-dollars

    def vector(self):
        return [int(self.limits.get(name) or 0) for name in NAMES]

    def keys(self, day, month):
        return _keys(self.kind, self.ident, day, month)


@lru_cache(maxsize=4096)
def _keys(kind, ident, day, month):
    """A scope's five store keys in a period (remembered: built on every admitted request)."""
    base = f"gw:rl:{kind}:{ident}"
    return [
        make_key(f"{base}:rq"),  # strings "level at limit" (a hash before: new names, no WRONGTYPE)
        make_key(f"{base}:tk"),
        make_key(f"{base}:conc"),
        make_key(f"{base}:d:{day}"),
        make_key(f"{base}:m:{month}"),
    ]


def scopes_for(workspace_id, user_id, api_key_id, workspace_limits, key_limits):
    """The scopes with limits for one request; workspace_limits is WorkspaceInfo.limits."""
    scopes = []
    workspace_limits = workspace_limits or {}
    if workspace_limits.get("workspace"):
        scopes.append(Scope("workspace", str(workspace_id), workspace_limits["workspace"]))
    if user_id is not None:
        mine = {**(workspace_limits.get("member") or {}), **(workspace_limits.get("users") or {}).get(str(user_id), {})}
        if mine:
            scopes.append(Scope("user", f"{workspace_id}:{user_id}", mine))
    if api_key_id is not None and key_limits:
        scopes.append(Scope("key", str(api_key_id), key_limits))
    return scopes


_HEADER_NAMES = tuple(
    (index, name, tuple(f"x-ratelimit-{part}-{label}" for part in ("limit", "remaining", "reset")))
    for index, name, label in ((0, "rpm", "requests"), (2, "tpm", "tokens"))
)


@dataclass
class Ticket:
    """An admitted request's reservation, settled once."""

    scopes: list
    request_id: str
    tokens: int
    cost: int  # micro-dollars
    day: str
    month: str
    state: list = field(default_factory=list)  # per scope: [req_rem, req_reset_ms, tok_rem, tok_reset_ms, day, month]
    settled: bool = False

    def tight(self):
        """Whether, until it is settled, this reservation makes a scope refuse the next request: its tokens
        a minute or a budget used up by the estimate (the answer at its longest), not by what was spent."""
        for scope, values in zip(self.scopes, self.state, strict=False):
            limits = scope.limits
            if self.tokens and limits.get("tpm") and values[2] < 1:
                return True
            if self.cost and limits.get("daily_budget") and values[4] >= limits["daily_budget"]:
                return True
            if self.cost and limits.get("monthly_budget") and values[5] >= limits["monthly_budget"]:
                return True
        return False

    def headers(self):
        """The OpenAI rate-limit headers, from the scope with the least left of each."""
        out = {}
        for index, name, names in _HEADER_NAMES:
            best = None
            for scope, values in zip(self.scopes, self.state, strict=False):
                limit = scope.limits.get(name)
                if limit and (best is None or values[index] < best[1]):
                    best = (limit, values[index], values[index + 1])
            if best:
                out[names[0]] = str(best[0])
                out[names[1]] = str(best[1] if best[1] > 0 else 0)
                out[names[2]] = duration(best[2])
        return out


def spoken_duration(seconds):
    """A wait as a person reads it: "45 s", "1 min", "4 min 49 s", "2 h 5 min", "3 days 4 h"."""
    seconds = max(1, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    return f"{secs} s"


@dataclass
class Refusal(Exception):
    scope: Scope
    limit: str  # requests | tokens | concurrent | day | month
    retry_after: int  # seconds
    value: int
    used: int
    headers: dict = field(default_factory=dict)

    def message(self):
        what = SCOPE_WORDS[self.scope.kind]
        if self.limit in ("day", "month"):
            return (
                f"The {LIMIT_WORDS[self.limit]} of {what} (${micro_dollars_text(self.value)}) is used up; "
                f"it resets in {duration(self.retry_after * 1000)}."
            )
        return (
            f"Rate limit reached for {LIMIT_WORDS[self.limit]} on {what}: limit {self.value}, "
            f"in use {self.used}. Try again in {duration(self.retry_after * 1000)}."
        )

    def plain(self):
        """For a person in the chat: what is used up, and when it resets (time of day in TIME_ZONE)."""
        at = timezone.localtime() + timedelta(seconds=self.retry_after)
        when = at.strftime("%H:%M") if self.retry_after < 86400 else at.strftime("%d %b %H:%M")
        zone = timezone.get_current_timezone_name()
        what = SCOPE_WORDS[self.scope.kind]
        if self.limit in ("day", "month"):
            return (
                f"Your quota is reached: the {LIMIT_WORDS[self.limit]} of {what} is used up. "
                f"It resets at {when} {zone} (in {spoken_duration(self.retry_after)})."
            )
        words = LIMIT_WORDS[self.limit]
        if self.value == 1:
            words = words.replace("requests", "request").replace("tokens", "token")
        return (
            f"Your quota is reached: {what} allows {self.value} {words}. "
            f"You can ask again in {spoken_duration(self.retry_after)} (at {when} {zone})."
        )

    @property
    def code(self):
        return "insufficient_quota" if self.limit in ("day", "month") else "rate_limit_exceeded"


def duration(ms):
    """OpenAI's reset format: 1s, 6m0s, 1h2m3s; 120ms below a second."""
    ms = max(int(ms), 0)
    if ms < 1000:
        return f"{ms}ms"
    seconds = math.ceil(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def periods(now=None):
    """(day id, month id, seconds to the day's end, seconds to the month's end) in TIME_ZONE."""
    if now is None:
        return _periods_at(int(time.time()))
    return _periods(now)


@lru_cache(maxsize=2)
def _periods_at(second):
    return _periods(datetime.fromtimestamp(second, tz=timezone.get_current_timezone()))


def _periods(now):
    now = timezone.localtime(now)
    day_end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_end = (first + timedelta(days=32)).replace(day=1)
    return (
        now.strftime("%Y%m%d"),
        now.strftime("%Y%m"),
        max(1, math.ceil((day_end - now).total_seconds())),
        max(1, math.ceil((month_end - now).total_seconds())),
    )


def period_start(kind, now=None):
    now = timezone.localtime(now)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.replace(day=1) if kind == "month" else start


# The scripts ------------------------------------------------------------------------------------

# A bucket is one string, a zero byte and four little-endian doubles: its level, the time (ms) of
# that level, the limit it was counted under, and when the key expires. The key must live until the
# bucket is full again; its expiry is set 2 minutes beyond that and only written again when that
# no longer holds (SET ... PX costs Redis twice a SET ... KEEPTTL), so a bucket in steady use has
# its expiry written about once in 2 minutes. (It was a hash with a PEXPIRE, then the text "level
# at limit" written with its expiry every time: a pattern match and three strtod to read it.)
_LEVEL = """
local function level_at(v, cap, now)
  if not v then return cap end
  local level, at, was, expires
  if string.byte(v) == 0 then
    local _
    _, level, at, was, expires = struct.unpack('<Bdddd', v)
  else  -- the text "level at limit" of an earlier version
    level, at, was = string.match(v, '^(%S+) (%S+) (%S+)$')
    level, at, was = tonumber(level), tonumber(at), tonumber(was)
  end
  -- Counted under another limit (it was changed): what was used stays used.
  level = level + cap - was + (now - at) * cap / 60000
  if level > cap then return cap, expires end
  return level, expires
end
local function level_of(key, cap, now)
  return level_at(redis.call('GET', key), cap, now)
end
local function put_level(key, cap, level, now, expires)
  local full = now + (cap - level) * 60000 / cap
  if expires and expires >= full + 1000 then
    redis.call('SET', key, struct.pack('<Bdddd', 0, level, now, cap, expires), 'KEEPTTL')
  else
    local ttl = math.ceil(full - now) + 120000
    redis.call('SET', key, struct.pack('<Bdddd', 0, level, now, cap, now + ttl), 'PX', ttl)
  end
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
"""

ADMIT_LUA = (
    _LEVEL
    + """
local n, tokens, cost, rid = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local conc_ttl, day_ttl, month_ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local requests = tonumber(ARGV[8])
local req, tok, caps = {}, {}, {}
for i = 0, n - 1 do
  local k, a = i * 5, 9 + i * 5
  local rpm, tpm, conc = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  caps[i] = {rpm, tpm, conc}  -- read once: each tonumber is a strtod
  if rpm > 0 then
    req[i] = level_of(KEYS[k + 1], rpm, now)
    if requests > 0 and req[i] < 1 then
      return {0, i, 'requests', math.ceil((1 - req[i]) * 60000 / rpm), rpm, rpm - math.floor(req[i])}
    end
  end
  if tpm > 0 then
    tok[i] = level_of(KEYS[k + 2], tpm, now)
    if tokens > 0 and tok[i] <= 0 then
      return {0, i, 'tokens', math.ceil((1 - tok[i]) * 60000 / tpm), tpm, tpm - math.floor(tok[i])}
    end
  end
  if conc > 0 and requests > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    local busy = redis.call('ZCARD', KEYS[k + 3])
    if busy >= conc then return {0, i, 'concurrent', 1000, conc, busy} end
  end
  if cost > 0 then
    local cap = tonumber(ARGV[a + 3])
    if cap > 0 then
      local spent = redis.call('GET', KEYS[k + 4])
      if not spent then return {-1, i, 'day'} end
      if tonumber(spent) >= cap then return {0, i, 'day', 0, cap, tonumber(spent)} end
    end
    cap = tonumber(ARGV[a + 4])
    if cap > 0 then
      local spent = redis.call('GET', KEYS[k + 5])
      if not spent then return {-1, i, 'month'} end
      if tonumber(spent) >= cap then return {0, i, 'month', 0, cap, tonumber(spent)} end
    end
  end
end
local out = {1}
for i = 0, n - 1 do
  local k, a = i * 5, 9 + i * 5
  local rpm, tpm, conc = caps[i][1], caps[i][2], caps[i][3]
  local row = {-1, 0, -1, 0, -1, -1}
  if rpm > 0 then
    local level = req[i] - requests
    if requests > 0 then put_level(KEYS[k + 1], rpm, level, now) end
    row[1], row[2] = math.floor(level), math.ceil((rpm - level) * 60000 / rpm)
  end
  if tpm > 0 then
    local level = tok[i] - tokens
    if tokens > 0 then put_level(KEYS[k + 2], tpm, level, now) end
    row[3], row[4] = math.floor(level), math.ceil((tpm - level) * 60000 / tpm)
  end
  if conc > 0 and requests > 0 then
    redis.call('ZADD', KEYS[k + 3], now + conc_ttl, rid)
    redis.call('PEXPIRE', KEYS[k + 3], conc_ttl)
  end
  -- The budgets: reserved (what was spent comes back); left alone (and -1) without a cost.
  if cost > 0 then
    if tonumber(ARGV[a + 3]) > 0 then row[5] = redis.call('INCRBY', KEYS[k + 4], cost) end
    if tonumber(ARGV[a + 4]) > 0 then row[6] = redis.call('INCRBY', KEYS[k + 5], cost) end
  end
  local m = i * 6 + 1
  for j = 1, 6 do out[m + j] = row[j] end
end
return out
"""
)

SETTLE_LUA = (
    _LEVEL
    + """
local n, rtok, atok, rcost, acost, rid = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local out = {}
for i = 0, n - 1 do
  local k, a = i * 5, 7 + i * 5
  local tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if tpm > 0 and rtok ~= atok then
    put_level(KEYS[k + 2], tpm, level_of(KEYS[k + 2], tpm, now) + rtok - atok, now)
  end
  if conc > 0 then redis.call('ZREM', KEYS[k + 3], rid) end
  for j = 1, 2 do
    local spent = -1
    if tonumber(ARGV[a + 2 + j]) > 0 then
      local key = KEYS[k + 3 + j]
      if acost ~= rcost and redis.call('EXISTS', key) == 1 then
        spent = redis.call('INCRBY', key, acost - rcost)
      else
        spent = tonumber(redis.call('GET', key) or '0')
      end
    end
    table.insert(out, spent)
  end
end
return out
"""
)


# A request without tokens or money: a cache hit, or a request reserved ahead of its lookup (`Ahead`).
# The same steps as ADMIT_LUA with tokens and cost 0, on the three keys and three limits of each
# scope only. KEYS: per scope its requests bucket, tokens bucket and concurrency set; ARGV: the
# request's id, its concurrency slot's lifetime (ms), then per scope rpm, tpm and max_concurrent.
# The reply has ADMIT_LUA's shape. The first pass checks every scope (a refusal changes nothing)
# and keeps what the second needs in the reply's own slots: no table of its own.
HIT_LUA = (
    _LEVEL
    + """
local rid = ARGV[1]
local out = {1, -1, 0, -1, 0, -1, -1}  -- one scope's room made at once
local floor, ceil = math.floor, math.ceil
for i = 0, #KEYS / 3 - 1 do
  local k, a, m = i * 3, 3 + i * 3, i * 6 + 1
  local rpm, tpm, conc = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local req, tok, expires = 0, 0, false
  if rpm > 0 or tpm > 0 then
    local v = redis.call('MGET', KEYS[k + 1], KEYS[k + 2])
    if rpm > 0 then
      req, expires = level_at(v[1], rpm, now)
      if req < 1 then
        return {0, i, 'requests', ceil((1 - req) * 60000 / rpm), rpm, rpm - floor(req)}
      end
    end
    if tpm > 0 then tok = level_at(v[2], tpm, now) end
  end
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    local busy = redis.call('ZCARD', KEYS[k + 3])
    if busy >= conc then return {0, i, 'concurrent', 1000, conc, busy} end
  end
  out[m + 1], out[m + 2], out[m + 3], out[m + 4], out[m + 5], out[m + 6] = req, rpm, tok, tpm, conc, expires
end
for i = 0, #KEYS / 3 - 1 do
  local k, m = i * 3, i * 6 + 1
  local rpm, tpm, conc = out[m + 2], out[m + 4], out[m + 5]
  if rpm > 0 then
    local level = out[m + 1] - 1
    put_level(KEYS[k + 1], rpm, level, now, out[m + 6])
    out[m + 1], out[m + 2] = floor(level), ceil((rpm - level) * 60000 / rpm)
  else
    out[m + 1], out[m + 2] = -1, 0
  end
  if tpm > 0 then
    local level = out[m + 3]
    out[m + 3], out[m + 4] = floor(level), ceil((tpm - level) * 60000 / tpm)
  else
    out[m + 3], out[m + 4] = -1, 0
  end
  if conc > 0 then
    local ttl = tonumber(ARGV[2])
    redis.call('ZADD', KEYS[k + 3], now + ttl, rid)
    redis.call('PEXPIRE', KEYS[k + 3], ttl)
  end
  out[m + 5], out[m + 6] = -1, -1
end
return out
"""
)


# Gives back a request reserved ahead that is not going ahead as reserved (see `Ahead`).
UNDO_LUA = (
    _LEVEL
    + """
local n, rid = tonumber(ARGV[1]), ARGV[2]
for i = 0, n - 1 do
  local rpm, conc = tonumber(ARGV[3 + i * 2]), tonumber(ARGV[4 + i * 2])
  if rpm > 0 then
    local level = level_of(KEYS[i * 2 + 1], rpm, now) + 1
    if level > rpm then level = rpm end
    put_level(KEYS[i * 2 + 1], rpm, level, now)
  end
  if conc > 0 then redis.call('ZREM', KEYS[i * 2 + 2], rid) end
end
return 1
"""
)


class RedisLimiter:
    def __init__(self, store: RedisStore):
        self.store = store
        self._admit = store.client.register_script(ADMIT_LUA)
        self._settle = store.client.register_script(SETTLE_LUA)
        self._undo = store.client.register_script(UNDO_LUA)
        self._hit = store.client.register_script(HIT_LUA)
        # Loaded at once, not on a request's first use of each (a NOSCRIPT answer costs 2 more round trips).
        scripts = (self._admit, self._settle, self._undo, self._hit)
        store._run(None, lambda r: store._pipe_checked([("SCRIPT", "LOAD", s.script) for s in scripts]))

    def lookup_and_admit(self, keys, admit_keys, admit_args, settle=True):
        """The values of `keys` and the admission script's reply, in one round trip (None: no answer)."""

        def run(r):
            (values,), reply = self.store.run_script(
                self._hit, admit_keys, admit_args, also=[("MGET", *keys)], settle=settle
            )
            return values, reply

        return self.store._run(([None] * len(keys), None), run)

    def undo(self, keys, args):
        return self.store._run(None, lambda r: self.store.run_script(self._undo, keys, args)[1])

    def admit(self, keys, args):
        return self.store._run(None, lambda r: self.store.run_script(self._admit, keys, args)[1])

    def settle(self, keys, args):
        return self.store._run(None, lambda r: self.store.run_script(self._settle, keys, args)[1])

    def seed(self, key, value, ttl):
        self.store._run(None, lambda r: r.set(key, value, ex=ttl, nx=True))

    def peek(self, keys):
        """Raw state of some keys (usage pages)."""

        def run(r):
            pipe = r.pipeline(transaction=False)
            for key in keys:
                if key.endswith(":conc"):
                    pipe.zcount(key, int(time.time() * 1000), "+inf")
                else:
                    pipe.get(key)
            values = pipe.execute()
            # A bucket as the local limiter keeps it: [level, at, limit].
            return [_bucket(v) if k.endswith((":rq", ":tk")) and v else v for k, v in zip(keys, values, strict=True)]

        return self.store._run([None] * len(keys), run)


def _bucket(raw):
    """A bucket's stored string (a zero byte and four doubles, or the text "level at limit") as [level, at, limit]."""
    return list(struct.unpack("<Bdddd", raw)[1:4]) if raw[:1] == b"\0" else raw.split()


def _level_now(state, cap, now):
    """A bucket's level now from its stored (level, at, limit): as the scripts' level_of."""
    level, at = float(state[0]), float(state[1])
    if len(state) > 2 and state[2] is not None:
        level += cap - float(state[2])  # counted under another limit: what was used stays used
    return min(cap, level + (now - at) * cap / WINDOW_MS)


class LocalLimiter:
    """The scripts' steps in Python, under the store's lock (the host's file lock without Redis)."""

    def __init__(self, store: LocalStore):
        self.store = store

    def _level(self, cache, key, cap, now):
        state = cache.get(key)
        if not state:
            return cap
        return _level_now(state, cap, now)

    def _put(self, cache, key, cap, level, now):
        cache.set(key, (level, now, cap), math.ceil((cap - level) * WINDOW_MS / cap / 1000) + 60)

    def admit(self, keys, args):
        with self.store._lock():
            return self._admit(self.store.cache, keys, args)

    def _admit(self, cache, keys, args):
        now = time.time() * 1000
        n, tokens, cost, rid, conc_ttl, requests = args[0], args[1], args[2], args[3], args[4], args[7]
        req, tok = {}, {}
        for i in range(n):
            k, a = i * 5, 8 + i * 5
            rpm, tpm, conc = args[a], args[a + 1], args[a + 2]
            if rpm > 0:
                req[i] = self._level(cache, keys[k], rpm, now)
                if requests > 0 and req[i] < 1:
                    return [0, i, "requests", math.ceil((1 - req[i]) * WINDOW_MS / rpm), rpm, rpm - math.floor(req[i])]
            if tpm > 0:
                tok[i] = self._level(cache, keys[k + 1], tpm, now)
                if tokens > 0 and tok[i] <= 0:
                    return [0, i, "tokens", math.ceil((1 - tok[i]) * WINDOW_MS / tpm), tpm, tpm - math.floor(tok[i])]
            if conc > 0 and requests > 0:
                busy = {r: at for r, at in (cache.get(keys[k + 2]) or {}).items() if at > now}
                if len(busy) >= conc:
                    return [0, i, "concurrent", 1000, conc, len(busy)]
            if cost > 0:
                for j, name in ((1, "day"), (2, "month")):
                    cap = args[a + 2 + j]
                    if cap > 0:
                        spent = cache.get(keys[k + 2 + j])
                        if spent is None:
                            return [-1, i, name]
                        if spent >= cap:
                            return [0, i, name, 0, cap, spent]
        out = [1]
        for i in range(n):
            k, a = i * 5, 8 + i * 5
            rpm, tpm, conc = args[a], args[a + 1], args[a + 2]
            row = [-1, 0, -1, 0, -1, -1]
            if rpm > 0:
                level = req[i] - requests
                if requests > 0:
                    self._put(cache, keys[k], rpm, level, now)
                row[0], row[1] = math.floor(level), math.ceil((rpm - level) * WINDOW_MS / rpm)
            if tpm > 0:
                level = tok[i] - tokens
                if tokens > 0:
                    self._put(cache, keys[k + 1], tpm, level, now)
                row[2], row[3] = math.floor(level), math.ceil((tpm - level) * WINDOW_MS / tpm)
            if conc > 0 and requests > 0:
                busy = {r: at for r, at in (cache.get(keys[k + 2]) or {}).items() if at > now}
                busy[rid] = now + conc_ttl
                cache.set(keys[k + 2], busy, math.ceil(conc_ttl / 1000))
            for j in (1, 2):
                if args[a + 2 + j] > 0:
                    key = keys[k + 2 + j]
                    spent = cache.get(key) or 0
                    if cost > 0:
                        spent += cost
                        cache.set(key, spent, args[4 + j])
                    row[3 + j] = spent
            out.extend(row)
        return out

    def settle(self, keys, args):
        with self.store._lock():
            cache, now = self.store.cache, time.time() * 1000
            n, rtok, atok, rcost, acost, rid = args[:6]
            out = []
            for i in range(n):
                k, a = i * 5, 6 + i * 5
                tpm, conc = args[a + 1], args[a + 2]
                if tpm > 0 and rtok != atok:
                    self._put(cache, keys[k + 1], tpm, self._level(cache, keys[k + 1], tpm, now) + rtok - atok, now)
                if conc > 0:
                    busy = cache.get(keys[k + 2]) or {}
                    if busy.pop(rid, None) is not None:
                        cache.set(keys[k + 2], busy, 600)
                for j in (1, 2):
                    spent = -1
                    if args[a + 2 + j] > 0:
                        key = keys[k + 2 + j]
                        spent = cache.get(key)
                        if spent is not None and acost != rcost:
                            spent += acost - rcost
                            cache.set(key, spent, 40 * 86400)
                        spent = spent or 0
                    out.append(spent)
            return out

    def seed(self, key, value, ttl):
        self.store.cache.add(key, value, ttl)

    def peek(self, keys):
        out = []
        now = time.time() * 1000
        for key in keys:
            value = self.store.cache.get(key)
            if key.endswith((":rq", ":tk")):
                out.append(list(value) if value else [None, None, None])
            elif key.endswith(":conc"):
                out.append(sum(1 for at in (value or {}).values() if at > now))
            else:
                out.append(value)
        return out


_limiters = {}


def limiter():
    store = get_store()
    found = _limiters.get(id(store))
    if found is None or found.store is not store:
        found = RedisLimiter(store) if isinstance(store, RedisStore) else LocalLimiter(store)
        _limiters.clear()
        _limiters[id(store)] = found
    return found


# Admission and settlement ------------------------------------------------------------------------


def _seed_budget(scope, kind, key, ttl):
    """Start a period's counter from the usage rows already written for it."""
    from llmgateway.metering import records

    limiter().seed(key, records.spent_since(scope, period_start(kind)), ttl)


_warned_at = [float("-inf")]  # when this process last said that limits are not enforced


def unchecked():
    """The store did not answer: admit without limits, count it, and say so once a minute (or refuse: 503)."""
    from django.conf import settings

    from corporate.observability import metrics

    refuse = settings.USAGE_LIMITS_WITHOUT_STORE == "refuse"
    if not refuse:
        metrics.count_limits_unchecked()
    now = time.monotonic()
    if now - _warned_at[0] >= 60:
        _warned_at[0] = now
        if refuse:
            log.warning("limits and budgets cannot be checked: the store did not answer; completions are refused")
        else:
            log.warning("limits and budgets are not enforced: the store did not answer; completions are admitted")
    if refuse:
        from llmgateway.gateway.errors import GatewayError

        retry = settings.REDIS_RETRY_SECONDS
        raise GatewayError(
            503,
            f"Limits and budgets cannot be checked right now; try again in {retry} s.",
            code="limits_unavailable",
            type="server_error",
            retry_after=retry,
        )
    return None


_layouts = {}  # id(scopes) -> (scopes, day, month, keys, limit arguments): built once per scope list and day


def _layout(scopes, day, month):
    """The script's keys and per-scope limit arguments for these scopes in a period (remembered)."""
    found = _layouts.get(id(scopes))
    if found is not None and found[0] is scopes and found[1] == day and found[2] == month:
        return found[3], found[4]
    keys, vectors = [], []
    for scope in scopes:
        keys += scope.keys(day, month)
        vectors += scope.vector()
    if len(_layouts) > 4096:
        _layouts.clear()
    _layouts[id(scopes)] = (scopes, day, month, keys, vectors)  # holds the list: its id is not reused meanwhile
    return keys, vectors


_hit_layouts = {}  # id(scopes) -> (scopes, keys, limit arguments) for HIT_LUA


def _hit_layout(scopes):
    """HIT_LUA's keys and per-scope limit arguments for these scopes (remembered)."""
    found = _hit_layouts.get(id(scopes))
    if found is not None and found[0] is scopes:
        return found[1], found[2]
    keys, vectors = [], []
    for scope in scopes:
        keys += _keys(scope.kind, scope.ident, "", "")[:3]  # requests, tokens, concurrency: no period
        vectors += scope.vector()[:3]
    if len(_hit_layouts) > 4096:
        _hit_layouts.clear()
    _hit_layouts[id(scopes)] = (scopes, keys, vectors)  # holds the list: its id is not reused meanwhile
    return keys, vectors


def _admission(scopes, request_id, tokens, cost, deadline_seconds, requests=1):
    """The admission script's keys and arguments, and the periods they count in."""
    period = periods()
    keys, vectors = _layout(scopes, period[0], period[1])
    conc_ttl = int((deadline_seconds + 10) * 1000)
    return keys, [len(scopes), tokens, cost, request_id, conc_ttl, 3 * 86400, 40 * 86400, requests, *vectors], period


def admit(scopes, request_id, tokens, cost, deadline_seconds, requests=1):
    """Reserve in every scope, or raise Refusal; a Ticket (or None when the store does not answer).

    requests=0 reserves tokens and cost only, for a request already counted (`Ahead.top_up`).
    """
    keys, args, period = _admission(scopes, request_id, tokens, cost, deadline_seconds, requests)
    for _ in range(3):
        reply = limiter().admit(keys, args)
        if reply is None:
            return unchecked()
        reply = _decoded(reply)
        if reply[0] == -1:
            index, kind = int(reply[1]), reply[2]
            _seed_budget(scopes[index], kind, keys[index * 5 + (3 if kind == "day" else 4)], 3 * 86400)
            continue
        break
    else:
        return unchecked()
    return _ticket(scopes, request_id, tokens, cost, period, reply)


def _decoded(reply):
    return [x.decode() if isinstance(x, bytes) else x for x in reply]


def _ticket(scopes, request_id, tokens, cost, period, reply):
    """The Ticket of an admitted reply, or the Refusal of a refused one raised."""
    day, month, day_ttl, month_ttl = period
    if reply[0] == 0:
        index, name = int(reply[1]), reply[2]
        retry_ms = int(reply[3])
        if name == "day":
            retry_ms = day_ttl * 1000
        elif name == "month":
            retry_ms = month_ttl * 1000
        raise Refusal(scopes[index], name, max(1, math.ceil(retry_ms / 1000)), int(reply[4]), int(reply[5]))
    # Redis answers integers (the local limiter too): each scope's six, as they are.
    state = [reply[1 + i * 6 : 7 + i * 6] for i in range(len(scopes))]
    return Ticket(scopes, request_id, tokens, cost, day, month, state)


class Ahead:
    """A request reserved in the round trip that looks up its cache entry, before its scopes are confirmed.

    The /v1 entry point knows, from the key's earlier requests, which scopes
    will apply, and reserves the request (its requests-per-minute and
    concurrency slot; no tokens or money, as for a cache hit) together with
    the lookup (`RedisLimiter.lookup_and_admit`): a hit then costs no round
    trip for its limits. When the request is admitted (`Meter.admit`):

    - the scopes are as guessed and it is a hit: the reservation is its ticket;
    - a miss: its tokens and cost are reserved on top (`top_up`, the request
      is not counted twice); if that is refused, the request is given back;
    - the scopes differ (limits changed, another key): the request is given
      back (`undo`) and admitted from scratch.

    A refusal of the reservation ahead stands when the scopes are as guessed:
    whatever refuses a request with no tokens or money refuses it with them.
    """

    def __init__(self, scopes, request_id, deadline_seconds):
        self.scopes, self.request_id = scopes, request_id
        self.period = periods()
        # HIT_LUA's keys and arguments: three of each per scope, none of them in a period.
        self.keys, limits_args = _hit_layout(scopes)
        self.args = [request_id, int((deadline_seconds + 10) * 1000), *limits_args]
        self.reply = None  # the script's reply, once the round trip is made
        self.done = False  # confirmed (became a ticket or a refusal) or given back

    def ticket(self):
        """The reservation's Ticket (tokens and cost 0), or its Refusal raised."""
        self.done = True
        reply = self.reply
        return _ticket(self.scopes, self.request_id, 0, 0, self.period, reply if reply[0] == 1 else _decoded(reply))

    def top_up(self, tokens, cost, deadline_seconds):
        """Reserve a miss's tokens and cost on top of the request reserved ahead; the request goes back on a refusal."""
        try:
            return admit(self.scopes, self.request_id, tokens, cost, deadline_seconds, requests=0)
        except Refusal:
            self.done = False
            self.undo()
            raise

    def undo(self):
        """Give the request back (it was admitted ahead and will not go ahead as reserved)."""
        if self.done:
            return
        self.done = True
        if self.reply is None or int(self.reply[0]) != 1:
            return
        keys, args = [], [len(self.scopes), self.request_id]
        for index, scope in enumerate(self.scopes):
            keys += self.keys[index * 3 : index * 3 + 3 : 2]  # requests, concurrency
            args += [int(scope.limits.get("rpm") or 0), int(scope.limits.get("max_concurrent") or 0)]
        found = limiter()
        if isinstance(found, RedisLimiter):
            found.undo(keys, args)


def ahead(scopes, request_id, deadline_seconds):
    """An Ahead for these scopes when the store can run it with a lookup (Redis), else None."""
    if not scopes or not isinstance(limiter(), RedisLimiter):
        return None
    return Ahead(scopes, request_id, deadline_seconds)


def lookup_and_admit(keys, reservation, settle=True):
    """The store values of `keys`, reading them and running `reservation` (an Ahead) in one round trip."""
    values, reply = limiter().lookup_and_admit(keys, reservation.keys, reservation.args, settle)
    reservation.reply = reply
    return values


_holding = {}  # id(scopes) -> (scopes, whether one of them caps concurrent requests)


def holds(scopes):
    """Whether an admitted request holds a concurrency slot in one of these scopes (to free when settled)."""
    found = _holding.get(id(scopes))
    if found is None or found[0] is not scopes:
        if len(_holding) > 4096:
            _holding.clear()
        found = _holding[id(scopes)] = (scopes, any(s.limits.get("max_concurrent") for s in scopes))
    return found[1]


def settle(ticket, tokens, cost):
    """Replace the reservation by what was used: [(scope, "day"|"month", spent now, budget)] in micro-dollars."""
    if ticket is None or ticket.settled:
        return []
    ticket.settled = True
    if tokens == ticket.tokens and cost == ticket.cost and not holds(ticket.scopes):
        return []  # nothing to change (a hit without a concurrency cap): no round trip
    keys, args = [], [len(ticket.scopes), ticket.tokens, tokens, ticket.cost, cost, ticket.request_id]
    for scope in ticket.scopes:
        keys += scope.keys(ticket.day, ticket.month)
        args += scope.vector()
    reply = limiter().settle(keys, args)
    if not reply:
        return []
    crossings = []
    for i, scope in enumerate(ticket.scopes):
        for j, (kind, name) in enumerate((("day", "daily_budget"), ("month", "monthly_budget"))):
            budget = scope.limits.get(name)
            spent = int(reply[i * 2 + j])
            if budget and spent >= 0:
                crossings.append((scope, kind, spent, budget))
    return crossings


def refusal_headers(refusal):
    """Headers of a refused request: the limit that refused it at zero."""
    if refusal.limit not in ("requests", "tokens"):
        return {}
    label = refusal.limit
    return {
        f"x-ratelimit-limit-{label}": str(refusal.value),
        f"x-ratelimit-remaining-{label}": "0",
        f"x-ratelimit-reset-{label}": duration(refusal.retry_after * 1000),
    }


def state_of(scope, now=None):
    """What is left of a scope's limits now (usage pages): {name: {"limit", "used", "resets_at"}}."""
    day, month, day_ttl, month_ttl = periods(now)
    keys = scope.keys(day, month)
    raw = limiter().peek(keys)
    now_ms = time.time() * 1000
    out = {}
    for index, name in ((0, "rpm"), (1, "tpm")):
        cap = scope.limits.get(name)
        if not cap:
            continue
        value = raw[index]
        if isinstance(value, list | tuple) and value and value[0] is not None:
            level = _level_now(value, cap, now_ms)
        else:
            level = cap
        out[name] = {
            "limit": cap,
            "used": max(0, math.ceil(cap - level)),
            "resets_in": duration((cap - level) * 60000 / cap),
        }
    if scope.limits.get("max_concurrent"):
        out["max_concurrent"] = {"limit": scope.limits["max_concurrent"], "used": int(raw[2] or 0), "resets_in": ""}
    for index, name, ttl in ((3, "daily_budget", day_ttl), (4, "monthly_budget", month_ttl)):
        cap = scope.limits.get(name)
        if not cap:
            continue
        spent = raw[index]
        if spent is None:
            from llmgateway.metering import records

            spent = records.spent_since(scope, period_start("day" if index == 3 else "month", now))
        out[name] = {
            "limit": cap / 1_000_000,
            "used": int(spent) / 1_000_000,
            "resets_in": duration(ttl * 1000),
            "resets_at": timezone.localtime(now) + timedelta(seconds=ttl),
        }
    return out


def now_local():
    return timezone.localtime(datetime.now(tz=timezone.get_current_timezone()))
