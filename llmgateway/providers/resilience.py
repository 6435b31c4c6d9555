"""Retries with back-off and jitter, a circuit breaker per model, and the fallback model.

- A retryable ProviderError (timeout, 5xx, 429) is retried up to the model's
  `max_retries`, waiting an exponential back-off with full jitter, or the
  upstream's Retry-After when it asks for longer. A Retry-After longer than
  LLM_RETRY_AFTER_MAX is not waited for: the 429 goes back to the client
  with its Retry-After.
- Each failed attempt counts against the model; LLM_BREAKER_FAILURES in a
  row open its circuit for LLM_BREAKER_COOLDOWN seconds, during which calls
  skip it at once (503). After the cool-down one trial call is let through.
- When a model fails for availability reasons (not a refused request), its
  configured fallback model is tried, with its own retries.
A stream is retried only until its first chunk arrived.
"""

import logging
import random
import threading
import time

from django.conf import settings

from llmgateway.providers import provider_for
from llmgateway.providers.base import ProviderError

log = logging.getLogger("llmgateway.providers")
MAX_FALLBACKS = 3


def _setting(name, default):
    return getattr(settings, name, default)


class Breaker:
    """In-process circuit breaker: consecutive failures per model name."""

    def __init__(self):
        self._lock = threading.Lock()
        self._failures = {}
        self._open_until = {}

    def allow(self, name):
        with self._lock:
            until = self._open_until.get(name)
            if until is None:
                return True
            if time.monotonic() >= until:
                # Half-open: let one trial through; another failure re-opens.
                del self._open_until[name]
                self._failures[name] = _setting("LLM_BREAKER_FAILURES", 5) - 1
                return True
            return False

    def success(self, name):
        with self._lock:
            self._failures.pop(name, None)
            self._open_until.pop(name, None)

    def failure(self, name):
        with self._lock:
            count = self._failures.get(name, 0) + 1
            self._failures[name] = count
            if count >= _setting("LLM_BREAKER_FAILURES", 5):
                self._open_until[name] = time.monotonic() + _setting("LLM_BREAKER_COOLDOWN", 30)
                log.warning(
                    "model %s failed %s times in a row; skipping it for %ss",
                    name,
                    count,
                    _setting("LLM_BREAKER_COOLDOWN", 30),
                )

    def is_open(self, name):
        with self._lock:
            until = self._open_until.get(name)
            return until is not None and time.monotonic() < until

    def reset(self):
        with self._lock:
            self._failures.clear()
            self._open_until.clear()


breaker = Breaker()


def backoff(attempt, retry_after=None):
    """Seconds to wait before retry number attempt+1: full jitter, at least Retry-After."""
    base = _setting("LLM_RETRY_BACKOFF", 0.5)
    delay = random.uniform(0, min(8.0, base * (2**attempt)))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def _attempts(spec, run):
    """Call run(provider) with retries; returns its value or raises the last ProviderError."""
    provider = provider_for(spec)
    attempt = 0
    while True:
        if not breaker.allow(spec.name):
            raise ProviderError(
                f"Model {spec.name} is cooling down after repeated failures; try again shortly.",
                status=503,
                retryable=True,
                retry_after=_setting("LLM_BREAKER_COOLDOWN", 30),
                code="model_unavailable",
            )
        try:
            value = run(provider)
        except ProviderError as exc:
            if not exc.retryable:
                raise
            breaker.failure(spec.name)
            if attempt >= spec.max_retries:
                raise
            if exc.retry_after is not None and exc.retry_after > _setting("LLM_RETRY_AFTER_MAX", 20):
                raise
            delay = backoff(attempt, exc.retry_after)
            log.info(
                "model %s: retry %s of %s in %.2fs (%s)", spec.name, attempt + 1, spec.max_retries, delay, exc.code
            )
            time.sleep(delay)
            attempt += 1
            continue
        breaker.success(spec.name)
        return value


def _with_fallback(spec, run):
    """(value, spec that answered): the model, then its fallbacks in turn."""
    from llmgateway import registry

    tried = set()
    current = spec
    while True:
        tried.add(current.name)
        try:
            return _attempts(current, run), current
        except ProviderError as exc:
            if not exc.retryable or not current.fallback or current.fallback in tried or len(tried) > MAX_FALLBACKS:
                raise
            following = registry.get_spec(current.fallback)
            if following is None:
                raise
            log.warning("model %s failed (%s); trying fallback %s", current.name, exc.code, following.name)
            current = following


def complete(spec, request):
    """(response dict, spec that answered)."""
    return _with_fallback(spec, lambda provider: provider.complete(request))


def stream(spec, request):
    """(spec that answered, iterator of chunks); retries and fallback apply until the first chunk."""

    def first(provider):
        iterator = iter(provider.stream(request))
        try:
            head = next(iterator)
        except StopIteration:
            return [], iterator
        return [head], iterator

    (head, iterator), answered = _with_fallback(spec, first)

    def chunks():
        yield from head
        try:
            yield from iterator
        except ProviderError:
            breaker.failure(answered.name)
            raise

    return answered, chunks()
