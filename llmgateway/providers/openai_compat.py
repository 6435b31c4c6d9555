"""Any endpoint that speaks the OpenAI chat-completions API.

OpenAI, Azure OpenAI (a base URL ending in the deployment, with
`?api-version=...`; the key goes in the `api-key` header), vLLM, Ollama,
llama.cpp server, LM Studio. One attempt per call; resilience.py retries.
"""

import email.utils
import json
import logging
import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from llmgateway.providers import http
from llmgateway.providers.base import Provider, ProviderError

log = logging.getLogger("llmgateway.providers")

# Gateway-only request fields that the upstream must not see.
GATEWAY_FIELDS = {"cache", "model"}


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


class OpenAICompatibleProvider(Provider):
    def _url(self):
        parts = urlsplit(self.spec.base_url)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))

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
            host = urlsplit(self.spec.base_url).hostname or ""
            if host.endswith(".azure.com"):
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

    def _scrub(self, text):
        key = self._key()
        text = str(text)[:500]
        return text.replace(key, "***") if key else text

    def _error_from_response(self, response, body_text):
        status = response.status_code
        detail = ""
        try:
            detail = (json.loads(body_text).get("error") or {}).get("message") or ""
        except (ValueError, AttributeError):
            pass
        detail = self._scrub(detail)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        log.warning("upstream %s answered %s for model %s", self.spec.name, status, self.spec.upstream_model)
        if status == 429:
            return ProviderError(
                "The upstream model is rate limited; try again later.",
                status=429,
                retryable=True,
                retry_after=retry_after,
                code="rate_limit_exceeded",
            )
        if status >= 500:
            return ProviderError(
                f"The upstream model failed ({status}).",
                status=503 if status == 503 else 502,
                retryable=True,
                retry_after=retry_after,
            )
        if status in (401, 403):
            return ProviderError("The upstream refused the gateway's credentials for this model.", status=502)
        if status == 404:
            return ProviderError("The upstream does not know this model.", status=502)
        if status in (400, 413, 422):
            return ProviderError(
                f"The upstream refused the request: {detail}" if detail else "The upstream refused the request.",
                status=400,
                code="invalid_request_error",
            )
        return ProviderError(f"The upstream answered {status}.", status=502)

    def _transport_error(self, exc):
        if isinstance(exc, httpx.TimeoutException):
            log.warning("upstream %s timed out", self.spec.name)
            return ProviderError(
                "The upstream model did not answer in time.", status=504, retryable=True, code="upstream_timeout"
            )
        log.warning("upstream %s unreachable: %s", self.spec.name, exc.__class__.__name__)
        return ProviderError("The upstream model could not be reached.", status=502, retryable=True)

    def complete(self, request):
        try:
            response = http.post_json(
                self._url(), headers=self._headers(), body=self._body(request, False), timeout=self.spec.timeout
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._error_from_response(response, response.text)
        try:
            data = response.json()
        except ValueError:
            raise ProviderError("The upstream answered with something that is not JSON.", status=502) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise ProviderError("The upstream answer has no choices.", status=502)
        return data

    def stream(self, request):
        try:
            with http.post_stream(
                self._url(), headers=self._headers(), body=self._body(request, True), timeout=self.spec.timeout
            ) as response:
                if response.status_code >= 400:
                    raise self._error_from_response(response, response.read().decode(errors="replace"))
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise ProviderError("The upstream sent a malformed stream.", status=502) from None
                    if isinstance(chunk, dict) and chunk.get("error"):
                        raise ProviderError("The upstream stream failed.", status=502, retryable=False)
                    yield chunk
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
