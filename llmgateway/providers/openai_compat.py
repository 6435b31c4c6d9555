"""Any endpoint that speaks the OpenAI chat-completions API.

OpenAI, Azure OpenAI (a base URL ending in the deployment, with
`?api-version=...`; the key goes in the `api-key` header), vLLM, Ollama,
llama.cpp server, LM Studio. One attempt per call; resilience.py retries.
"""

import email.utils
import json
import logging
import re
import time
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from llmgateway.providers import http
from llmgateway.providers.base import DEADLINE_EXCEEDED, Provider, ProviderError

log = logging.getLogger("llmgateway.providers")

# Gateway-only request fields that the upstream must not see.
GATEWAY_FIELDS = {"cache", "model"}
# Upstream error text goes to the log only, this long at most.
LOGGED_ERROR_CHARS = 300


def parse_retry_after(value):
    """Seconds from a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@lru_cache(maxsize=256)
def _endpoint(base_url):
    """(the chat-completions URL under a base URL, whether its key goes in Azure's `api-key` header)."""
    parts = urlsplit(base_url)
    url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))
    return url, (parts.hostname or "").endswith(".azure.com")


class OpenAICompatibleProvider(Provider):
    def _url(self):
        return _endpoint(self.spec.base_url)[0]

    def _key(self):
        try:
            return self.spec.api_key()
        except ValueError:
            log.error("model %s: the stored upstream key cannot be decrypted", self.spec.name)
            raise ProviderError(
                "This model's stored upstream key cannot be read; an administrator must enter it again.",
                status=500,
                code="model_misconfigured",
            ) from None

    def _headers(self):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._key()
        if key:
            if _endpoint(self.spec.base_url)[1]:
                headers["api-key"] = key
            else:
                headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, request, stream):
        body = {k: v for k, v in request.items() if k not in GATEWAY_FIELDS and k != "stream_options"}
        body["model"] = self.spec.upstream_model
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _scrub(self, text, limit=LOGGED_ERROR_CHARS):
        key = self._key()
        text = str(text)
        text = text.replace(key, "***") if key else text
        return text[:limit]

    def _log_upstream_error(self, status, body_text):
        log.warning(
            "upstream %s answered %s for model %s: %s",
            self.spec.name,
            status,
            self.spec.upstream_model,
            self._scrub(body_text) or "(no body)",
        )

    def _error_from_response(self, response, body_text):
        status = response.status_code
        self._log_upstream_error(status, body_text)
        summary = upstream_summary(status, body_text)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status == 429:
            return ProviderError(
                "The upstream model is rate limited (HTTP 429); try again later.",
                status=429,
                retryable=True,
                retry_after=retry_after,
                code="rate_limit_exceeded",
            )
        if status >= 500:
            return ProviderError(summary, status=503 if status == 503 else 502, retryable=True, retry_after=retry_after)
        if status in (401, 403):
            return ProviderError(
                f"The upstream refused the gateway's credentials for this model (HTTP {status}).", status=502
            )
        if status == 404:
            return ProviderError("The upstream does not know this model (HTTP 404).", status=502)
        if status in (400, 413, 422):
            # The upstream's code and param, when they are identifiers, as OpenAI's clients read them
            # (`context_length_exceeded`, `messages`); its free text stays in the log.
            error = upstream_error(body_text)
            return ProviderError(
                summary,
                status=400,
                code=_code(error.get("code")) or "invalid_request_error",
                param=_param(error.get("param")),
            )
        return ProviderError(summary, status=502)

    def _transport_error(self, exc, deadline, idle=None):
        """idle: seconds a stream had waited for its next chunk (None before its first): it broke off mid-answer."""
        if isinstance(exc, httpx.TimeoutException):
            if deadline.expired():
                log.warning("upstream %s: the request's deadline (%ss) passed", self.spec.name, deadline.seconds)
                return deadline.error()
            if idle is not None:
                waited = max(1, round(idle))  # the model's own timeout may be shorter than LLM_STREAM_IDLE_SECONDS
                log.warning("upstream %s: the stream sent nothing for %ss", self.spec.name, waited)
                return ProviderError(
                    f"The upstream model stopped sending for {waited} s.", status=504, code="stream_idle_timeout"
                )
            log.warning("upstream %s timed out", self.spec.name)
            return ProviderError(
                "The upstream model did not answer in time.", status=504, retryable=True, code="upstream_timeout"
            )
        if idle is not None:
            log.warning("upstream %s broke off its stream: %s", self.spec.name, exc.__class__.__name__)
            return ProviderError("The upstream closed the connection before the answer was complete.", status=502)
        log.warning("upstream %s unreachable: %s", self.spec.name, exc.__class__.__name__)
        return ProviderError("The upstream model could not be reached.", status=502, retryable=True)

    def complete(self, request, deadline):
        until = deadline.attempt_until(self.spec.timeout)
        try:
            response = http.post_json(
                self._url(), headers=self._headers(), body=self._body(request, False), until=until
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, deadline) from None
        if response.status_code >= 400:
            raise self._error_from_response(response, response.text)
        try:
            data = response.json()
        except ValueError:
            raise ProviderError("The upstream answered with something that is not JSON.", status=502) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise ProviderError("The upstream answer has no choices.", status=502)
        self._check_usage(data)
        return data

    def _check_usage(self, data):
        """Drop a usage object that is not one (token counts are summed and priced downstream); whether it did."""
        usage = data.get("usage")
        if usage is None or _is_usage(usage):
            return False
        log.warning("upstream %s sent a malformed usage object; its tokens are counted from the text", self.spec.name)
        data["usage"] = None
        return True

    def stream(self, request, deadline):
        """The chunks of one streamed attempt.

        The first chunk must come by the attempt's end (model timeout or
        deadline); each later one within LLM_STREAM_IDLE_SECONDS of asking
        for it, and all of them by the deadline.
        """
        until = deadline.attempt_until(self.spec.timeout)
        started = finished = False
        asked = None  # time.monotonic() when the next chunk was asked for, once the first has come
        try:
            with http.post_stream(
                self._url(), headers=self._headers(), body=self._body(request, True), until=until
            ) as response:
                if response.status_code >= 400:
                    with http.bounded(until):
                        body_text = _error_text(response)
                    raise self._error_from_response(response, body_text)
                lines = _lines(response, settings.LLM_MAX_RESPONSE_BYTES)
                while True:
                    if started:
                        asked = time.monotonic()
                        until = min(deadline.at, asked + settings.LLM_STREAM_IDLE_SECONDS)
                    with http.bounded(until):
                        chunk = self._next_chunk(lines)
                    if chunk is None:
                        return
                    if chunk is _ENDED:
                        if finished:
                            return  # a server that ends its streams without [DONE], after the finish
                        raise self._unfinished(response, started)
                    started = True
                    finished = finished or any(c.get("finish_reason") for c in chunk.get("choices") or ())
                    yield chunk
        except httpx.HTTPError as exc:
            idle = time.monotonic() - asked if asked is not None else (0.0 if started else None)
            raise self._transport_error(exc, deadline, idle=idle) from None

    def _unfinished(self, response, started):
        """The error for a stream that ended with neither [DONE] nor a finish: a partial answer, or none at all."""
        if started:
            log.warning("upstream %s: the stream ended before the answer was complete", self.spec.name)
            return ProviderError("The upstream stream ended before the answer was complete.", status=502)
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        log.warning("upstream %s answered %s without an event stream (%s)", self.spec.name, response.status_code, kind)
        return ProviderError(
            f"The upstream answered HTTP {response.status_code} without an event stream ({kind}).",
            status=502,
            retryable=True,
        )

    def _next_chunk(self, lines):
        """The next chunk of the event stream; None at its [DONE], _ENDED when the body ends without one."""
        for line in lines:
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return None
            try:
                chunk = json.loads(data)
            except ValueError:
                raise ProviderError("The upstream sent a malformed stream.", status=502) from None
            if not isinstance(chunk, dict):
                raise ProviderError("The upstream sent a malformed stream.", status=502)
            if chunk.get("error"):
                error = chunk["error"]
                self._log_upstream_error("an error event", json.dumps(error))
                raise ProviderError(_summary("The upstream stream failed", error), status=502)
            if self._check_usage(chunk) and not chunk.get("choices"):
                continue  # a usage chunk whose usage was not one: the gateway counts the answer itself
            return chunk
        return _ENDED


# The event stream's body ended without [DONE].
_ENDED = object()
# Of an error's body, only this much is read (its type and code are at its start).
ERROR_BODY_BYTES = 64 * 1024


def _lines(response, limit):
    """The lines of a streamed body, at most `limit` bytes in all (decoded): an upstream that sends
    without end, or one line without end, fails rather than filling the worker's memory."""
    pending, total = b"", 0
    for data in response.iter_bytes():
        total += len(data)
        if total > limit:
            raise ProviderError(f"The upstream's stream is over {limit} bytes.", status=502)
        pending += data
        if b"\n" not in data:
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode(errors="replace")
    if pending:
        yield pending.rstrip(b"\r").decode(errors="replace")


def _error_text(response):
    """The start of an error's streamed body (ERROR_BODY_BYTES at most)."""
    parts, size = [], 0
    for data in response.iter_bytes():
        parts.append(data)
        size += len(data)
        if size >= ERROR_BODY_BYTES:
            break
    return b"".join(parts)[:ERROR_BODY_BYTES].decode(errors="replace")


def _is_usage(usage):
    """A dict whose token counts, where present, are whole numbers."""
    if not isinstance(usage, dict):
        return False
    counts = [usage.get(name) for name in ("prompt_tokens", "completion_tokens", "total_tokens")]
    return all(count is None or (isinstance(count, int) and not isinstance(count, bool)) for count in counts)


# An upstream's error type or code is passed on only when it looks like one: "context_length_exceeded".
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def _identifier(value):
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and IDENTIFIER.fullmatch(value) else None


# An upstream's own error code passed on to the client: a word, never one of the gateway's own codes
# (which its retries and circuit breaker act on).
CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
GATEWAY_CODES = frozenset(
    {
        DEADLINE_EXCEEDED,
        "model_misconfigured",
        "model_unavailable",
        "rate_limit_exceeded",
        "stream_idle_timeout",
        "upstream_address_refused",
        "upstream_error",
        "upstream_timeout",
        "upstream_url_invalid",
    }
)


def _code(value):
    if not isinstance(value, str) or not CODE.fullmatch(value) or value in GATEWAY_CODES:
        return None
    return value


def _summary(lead, error):
    """`lead`, then the upstream's error type and code in brackets when they are short identifiers."""
    labels = []
    if isinstance(error, dict):
        labels = [label for label in (_identifier(error.get("type")), _identifier(error.get("code"))) if label]
    return f"{lead} ({': '.join(labels)})." if labels else f"{lead}."


# A request field as OpenAI names it in `param`: "messages", "messages[0].content", "tools[1].function.name".
PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\[[0-9]{1,6}\]|\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,12}$")


def _param(value):
    return value if isinstance(value, str) and PARAM.fullmatch(value) else None


def upstream_error(body_text):
    """The `error` object of an upstream's error body ({} when there is none)."""
    try:
        error = json.loads(body_text).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def upstream_summary(status, body_text):
    """What the client hears of an upstream error: its status, type and code, never its free text.

    e.g. "The upstream model returned HTTP 400 (invalid_request_error: context_length_exceeded)."
    """
    return _summary(f"The upstream model returned HTTP {status}", upstream_error(body_text))
