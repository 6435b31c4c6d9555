"""Checking an OpenAI chat-completions request before anything else sees it."""

from django.conf import settings

from llmgateway.gateway.errors import bad_request as _bad

# Fields that would let a client choose the upstream or its credentials.
FORBIDDEN_FIELDS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "api_type",
        "azure_endpoint",
        "azure_deployment",
        "deployment_id",
        "organization",
        "engine",
        "headers",
        "extra_headers",
    }
)
KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "n",
        "stream",
        "stream_options",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "response_format",
        "seed",
        "metadata",
        "store",
        "service_tier",
        "reasoning_effort",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "verbosity",
        "safety_identifier",
        "prompt_cache_key",
        "cache",
    }
)
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def is_model_name(name):
    """Could this be a model's name? A string of 1 to 200 characters, no NUL, valid Unicode (no lone surrogate)."""
    if not isinstance(name, str) or not 0 < len(name) <= 200 or "\x00" in name:
        return False
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _number(request, name, low, high, integer=False):
    value = request.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise _bad(f"{name} must be {'a whole number' if integer else 'a number'}.", name)
    if not low <= value <= high:
        raise _bad(f"{name} must be between {low} and {high}.", name)


def _check_message_count(messages):
    limit = settings.LLM_MAX_MESSAGES
    if len(messages) > limit:
        raise _bad(
            f"A request may hold at most {limit:,} messages; this one has {len(messages):,}.",
            "messages",
            code="too_many_messages",
        )


def _content_chars(content):
    """Characters of one message's content: the string, or the text of its parts (checked before)."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(part.get("text") or "") for part in content)
    return 0


def _check_input_chars(messages):
    limit = settings.LLM_MAX_INPUT_CHARS
    total = sum(_content_chars(message.get("content")) for message in messages)
    if total > limit:
        raise _bad(
            f"The messages hold {total:,} characters; a request may send at most {limit:,}.",
            "messages",
            code="input_too_long",
        )


def validate_request(body):
    """A checked copy of an OpenAI chat-completions request; GatewayError(400) names the bad field."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    for name in body:
        if name in FORBIDDEN_FIELDS:
            raise _bad(
                f"{name!r} is not accepted: the gateway chooses the upstream and its credentials.",
                name,
                code="forbidden_parameter",
            )
        if name not in KNOWN_FIELDS:
            raise _bad(f"Unrecognized request argument supplied: {name}", name, code="unknown_parameter")
    request = dict(body)
    model = request.get("model")
    if model is not None and not is_model_name(model):
        raise _bad("model must be a model name.", "model")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list.", "messages")
    _check_message_count(messages)
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad("Each message must be an object.", f"messages[{index}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise _bad(f"messages[{index}].role must be one of {', '.join(sorted(ROLES))}.", f"messages[{index}].role")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _bad("content must be a string or a list of parts.", f"messages[{index}].content")
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            raise _bad("content parts must be objects.", f"messages[{index}].content")
        if isinstance(content, list) and any(not isinstance(part.get("text", ""), str) for part in content):
            raise _bad("the text of a content part must be a string.", f"messages[{index}].content")
    _check_input_chars(messages)
    _number(request, "temperature", 0, 2)
    _number(request, "top_p", 0, 1)
    _number(request, "presence_penalty", -2, 2)
    _number(request, "frequency_penalty", -2, 2)
    _number(request, "n", 1, 8, integer=True)
    _number(request, "max_tokens", 1, 10_000_000, integer=True)
    _number(request, "max_completion_tokens", 1, 10_000_000, integer=True)
    _number(request, "seed", -(2**63), 2**63 - 1, integer=True)
    stop = request.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise _bad("stop must be a string or a list of up to 4 strings.", "stop")
    if "stream" in request and not isinstance(request["stream"], bool | None):
        raise _bad("stream must be true or false.", "stream")
    for name, kind in (("tools", list), ("response_format", dict), ("stream_options", dict), ("metadata", dict)):
        if request.get(name) is not None and not isinstance(request[name], kind):
            raise _bad(f"{name} must be {'a list' if kind is list else 'an object'}.", name)
    return request


def check_chat_model(spec):
    """A chat completion needs a chat model: an embedding model is refused, by name, before any call."""
    if getattr(spec, "kind", "chat") == "embedding":
        raise _bad(
            f"The model {spec.name!r} is an embedding model; it makes vectors (POST /v1/embeddings) "
            "and cannot answer chat completions. Choose a chat model.",
            param="model",
            code="model_not_chat",
        )
