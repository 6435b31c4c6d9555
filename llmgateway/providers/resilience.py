"""Retries with back-off and jitter, a circuit breaker per model, and the fallback model, within one deadline.

- Every attempt, back-off and fallback of a request fits in its `Deadline`
  (LLM_DEADLINE_SECONDS, or the model's own): an attempt gets the model's
  timeout or what is left, whichever is less; no retry or fallback starts
  with less than MIN_ATTEMPT_SECONDS left, and no back-off is slept that
  would leave less. When the deadline passes, the call fails with a 504
  `deadline_exceeded`.
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

from corporate.observability import metrics
from llmgateway.providers import provider_for
from llmgateway.providers.base import DEADLINE_EXCEEDED, Deadline, ProviderError

log = logging.getLogger("llmgateway.providers")
MAX_FALLBACKS = 3
# A retry or a fallback needs at least this much of the deadline left to be worth starting.
MIN_ATTEMPT_SECONDS = 1.0


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


def _cooling_down(spec):
    return ProviderError(
        f"Model {spec.name} is cooling down after repeated failures; try again shortly.",
        status=503,
        retryable=True,
        retry_after=_setting("LLM_BREAKER_COOLDOWN", 30),
        code="model_unavailable",
    )


def _retry_delay(spec, attempt, exc, deadline):
    """Seconds to wait before retrying after exc; None when no retry may follow."""
    if attempt >= spec.max_retries:
        return None
    if exc.retry_after is not None and exc.retry_after > _setting("LLM_RETRY_AFTER_MAX", 20):
        return None
    delay = backoff(attempt, exc.retry_after)
    if deadline.remaining() - delay < MIN_ATTEMPT_SECONDS:
        log.info("model %s: no retry, the request's deadline is too near (%s)", spec.name, exc.code)
        return None
    return delay


def _attempts(spec, run, deadline, first=True):
    """Call run(provider, deadline) with retries; returns its value or raises the last ProviderError.

    first: this is the request's first model (its first attempt starts however little time is left).
    """
    provider = provider_for(spec)
    attempt = 0
    if deadline.expired() or (not first and deadline.remaining() < MIN_ATTEMPT_SECONDS):
        raise deadline.error()
    while True:
        if not breaker.allow(spec.name):
            raise _cooling_down(spec)
        started = time.perf_counter()
        try:
            value = run(provider, deadline)
        except ProviderError as exc:
            # A refused request's code is the upstream's own: one label for them all, so the series stay few.
            metrics.count_upstream_error(spec.name, "invalid_request_error" if exc.status == 400 else exc.code)
            if exc.code == DEADLINE_EXCEEDED:
                breaker.failure(spec.name)
                raise
            if not exc.retryable:
                raise
            breaker.failure(spec.name)
            delay = _retry_delay(spec, attempt, exc, deadline)
            if delay is None:
                raise
            log.info(
                "model %s: retry %s of %s in %.2fs (%s)", spec.name, attempt + 1, spec.max_retries, delay, exc.code
            )
            time.sleep(delay)
            attempt += 1
            continue
        metrics.observe_upstream(spec.name, time.perf_counter() - started)
        breaker.success(spec.name)
        return value


def _with_fallback(spec, run, deadline):
    """(value, spec that answered): the model, then its fallbacks in turn, while the deadline allows."""
    from llmgateway import registry

    tried = set()
    current = spec
    while True:
        tried.add(current.name)
        try:
            return _attempts(current, run, deadline, first=current is spec), current
        except ProviderError as exc:
            if not exc.retryable or not current.fallback or current.fallback in tried or len(tried) > MAX_FALLBACKS:
                raise
            if deadline.remaining() < MIN_ATTEMPT_SECONDS:
                raise
            following = registry.get_spec(current.fallback)
            if following is None:
                raise
            log.warning("model %s failed (%s); trying fallback %s", current.name, exc.code, following.name)
            current = following


def deadline_for(spec):
    """A new deadline for a request to this model: its own, else LLM_DEADLINE_SECONDS."""
    return Deadline(spec.deadline_seconds or settings.LLM_DEADLINE_SECONDS)


def complete(spec, request, deadline=None):
    """(response dict, spec that answered)."""
    deadline = deadline or deadline_for(spec)
    return _with_fallback(spec, lambda provider, deadline: provider.complete(request, deadline), deadline)


def stream(spec, request, deadline=None):
    """(spec that answered, iterator of chunks); retries and fallback apply until the first chunk.

    Close the iterator when done with it early: that hangs up on the upstream.
    """
    deadline = deadline or deadline_for(spec)

    def first(provider, deadline):
        iterator = iter(provider.stream(request, deadline))
        try:
            head = next(iterator)
        except StopIteration:
            return [], iterator
        return [head], iterator

    (head, iterator), answered = _with_fallback(spec, first, deadline)

    def chunks():
        try:
            yield from head
            yield from iterator
        except ProviderError:
            breaker.failure(answered.name)
            raise
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    return answered, chunks()
