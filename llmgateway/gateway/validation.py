"""Checking an OpenAI request (chat completions, embeddings) before anything else sees it.

What OpenAI's API refuses is refused here with a 400 naming the parameter as
OpenAI names it (`response_format.type`, `tools[0].function.name`): a client
that works against OpenAI works here, and one that would fail there learns
why before any model is called. The checks run once per distinct body (the
/v1 entry point remembers bodies it has prepared, gateway/entry.py).
"""

import re

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
EMBEDDING_FIELDS = frozenset({"input", "model", "encoding_format", "dimensions", "user"})
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TOOL_TYPES = ("function", "custom")
TOOL_CHOICES = ("none", "auto", "required")
MAX_TOOLS = 128
TOOL_FIELDS = frozenset({"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"})
# A function's, tool's or JSON schema's name, as OpenAI takes it.
NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# A content part's types, each carried in the field of its name: a string for these two, an object for the rest.
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")
TEXT_PARTS = frozenset({"text", "refusal"})
MODALITIES = ("text", "audio")
# metadata: at most 16 pairs, keys up to 64 characters, values strings of up to 512 (OpenAI's limits).
METADATA_PAIRS, METADATA_KEY, METADATA_VALUE = 16, 64, 512
LOGIT_BIAS_MAX = 1024
TOKEN_ID = re.compile(r"[0-9]{1,9}")
STRING_FIELDS = ("safety_identifier", "prompt_cache_key")
# Fields whose value is one word of a list OpenAI extends now and then ("auto", "flex", "minimal"…): a
# short identifier is passed on, for the upstream to judge; anything else is refused here.
WORD_FIELDS = ("service_tier", "reasoning_effort", "verbosity")
WORD = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
USER_MAX_CHARS = 512
IMAGE_DETAILS = ("auto", "low", "high")
OBJECT_FIELDS = ("audio", "prediction", "web_search_options")


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


def _check_fields(body, known):
    for name in body:
        if name in FORBIDDEN_FIELDS:
            raise _bad(
                f"{name!r} is not accepted: the gateway chooses the upstream and its credentials.",
                name,
                code="forbidden_parameter",
            )
        if name not in known:
            raise _bad(f"Unrecognized request argument supplied: {name}", name, code="unknown_parameter")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("Invalid type for 'user': expected a string.", "user", code="invalid_type")
    if user is not None:
        _check_text(user, "user")
        if len(user) > USER_MAX_CHARS:
            raise _too_long("user", USER_MAX_CHARS)


def _invalid_type(param, expected):
    return _bad(f"Invalid type for '{param}': expected {expected}.", param, code="invalid_type")


def _too_long(param, limit):
    return _bad(f"Invalid '{param}': at most {limit} characters.", param, code="string_above_max_length")


def _missing(param):
    return _bad(f"Missing required parameter: '{param}'.", param, code="missing_required_parameter")


def _check_name(value, param):
    """A function's, tool's or schema's name: a string of 1 to 64 letters, digits, underscores and dashes."""
    if value is None:
        raise _missing(param)
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise _bad(
            f"Invalid '{param}': expected 1 to 64 letters, digits, underscores or dashes.",
            param,
            code="invalid_value",
        )
    return value


def _one_of(value, allowed, param):
    if not isinstance(value, str) or value not in allowed:
        listed = ", ".join(repr(v) for v in sorted(allowed))
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise _bad(
            f"Invalid value for '{param}': {shown}. Supported values are: {listed}.", param, code="invalid_value"
        )
    return value


def _check_response_format(value):
    if value.get("type") is None:
        raise _missing("response_format.type")
    if _one_of(value["type"], RESPONSE_FORMATS, "response_format.type") != "json_schema":
        return
    schema = value.get("json_schema")
    if schema is None:
        raise _missing("response_format.json_schema")
    if not isinstance(schema, dict):
        raise _invalid_type("response_format.json_schema", "an object")
    _check_name(schema.get("name"), "response_format.json_schema.name")
    if schema.get("schema") is not None and not isinstance(schema["schema"], dict):
        raise _invalid_type("response_format.json_schema.schema", "an object")
    if schema.get("strict") is not None and not isinstance(schema["strict"], bool):
        raise _invalid_type("response_format.json_schema.strict", "a boolean")


def _check_stream_options(request):
    options = request["stream_options"]
    if request.get("stream") is not True:
        raise _bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    for name in ("include_usage", "include_obfuscation"):
        if options.get(name) is not None and not isinstance(options[name], bool):
            raise _invalid_type(f"stream_options.{name}", "a boolean")


def _check_function(function, param):
    """A function's definition (in `tools` or the older `functions`): its name, and its parts' types."""
    if function is None:
        raise _missing(param)
    if not isinstance(function, dict):
        raise _invalid_type(param, "an object")
    name = _check_name(function.get("name"), f"{param}.name")
    if function.get("description") is not None and not isinstance(function["description"], str):
        raise _invalid_type(f"{param}.description", "a string")
    if function.get("parameters") is not None and not isinstance(function["parameters"], dict):
        raise _invalid_type(f"{param}.parameters", "an object")
    if function.get("strict") is not None and not isinstance(function["strict"], bool):
        raise _invalid_type(f"{param}.strict", "a boolean")
    return name


def _check_tools(tools, param="tools"):
    """The names of a non-empty list of tools, each {"type": "function", "function": {"name": ...}} (or custom)."""
    if not tools:
        raise _bad(f"Invalid '{param}': empty array. Expected at least one item.", param, code="empty_array")
    if len(tools) > MAX_TOOLS:
        raise _bad(f"Invalid '{param}': at most {MAX_TOOLS} items.", param, code="array_above_max_length")
    names = set()
    for index, tool in enumerate(tools):
        where = f"{param}[{index}]"
        if param == "functions":  # the older form: the function itself
            names.add(("function", _check_function(tool, where)))
            continue
        if not isinstance(tool, dict):
            raise _invalid_type(where, "an object")
        if tool.get("type") is None:
            raise _missing(f"{where}.type")
        kind = _one_of(tool["type"], TOOL_TYPES, f"{where}.type")
        names.add((kind, _check_function(tool.get(kind), f"{where}.{kind}")))
    return names


def _check_tool_choice(choice, names, param="tool_choice", tools="tools"):
    """`tool_choice` (or the older `function_call`): a mode, or a tool of `tools` by name."""
    if names is None:
        raise _bad(f"Invalid value for '{param}': '{param}' is only allowed when '{tools}' are specified.", param)
    modes = TOOL_CHOICES if param == "tool_choice" else TOOL_CHOICES[:2]
    if isinstance(choice, str):
        _one_of(choice, modes, param)
        return
    if not isinstance(choice, dict):
        raise _invalid_type(param, "a string or an object")
    if param == "function_call":
        kind, name = "function", _check_name(choice.get("name"), f"{param}.name")
    elif choice.get("type") is None:
        raise _missing(f"{param}.type")
    elif choice["type"] == "allowed_tools":
        allowed = choice.get("allowed_tools")
        if not isinstance(allowed, dict) or not isinstance(allowed.get("tools"), list):
            raise _invalid_type(f"{param}.allowed_tools", "an object with a list of tools")
        _one_of(allowed.get("mode"), ("auto", "required"), f"{param}.allowed_tools.mode")
        return
    else:
        kind = _one_of(choice["type"], TOOL_TYPES, f"{param}.type")
        named = choice.get(kind)
        if named is None:
            raise _missing(f"{param}.{kind}")
        if not isinstance(named, dict):
            raise _invalid_type(f"{param}.{kind}", "an object")
        name = _check_name(named.get("name"), f"{param}.{kind}.name")
    if (kind, name) not in names:
        raise _bad(f"Invalid value for '{param}': no {kind} named {name!r} in '{tools}'.", param, code="invalid_value")


def _check_tool_fields(request):
    """`tools`, `tool_choice`, `parallel_tool_calls` and the older `functions` and `function_call`, together."""
    tools = request.get("tools")
    names = _check_tools(tools) if tools is not None else None
    if request.get("tool_choice") is not None:
        _check_tool_choice(request["tool_choice"], names)
    parallel = request.get("parallel_tool_calls")
    if parallel is not None:
        if names is None:
            raise _bad(
                "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' "
                "are specified.",
                "parallel_tool_calls",
            )
        if not isinstance(parallel, bool):
            raise _invalid_type("parallel_tool_calls", "a boolean")
    functions = request.get("functions")
    if functions is not None and not isinstance(functions, list):
        raise _invalid_type("functions", "an array")
    names = _check_tools(functions, "functions") if functions is not None else None
    if request.get("function_call") is not None:
        _check_tool_choice(request["function_call"], names, "function_call", "functions")


def _is_unicode(text):
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_text(text, param):
    if not _is_unicode(text):
        raise _bad(f"Invalid '{param}': not valid Unicode (it holds a lone surrogate).", param, code="invalid_value")


def _check_parts(content, where):
    """A message's content parts: each a known type carrying its field (text as a string, the rest objects)."""
    for n, part in enumerate(content):
        param = f"{where}.content[{n}]"
        kind = part.get("type")
        if kind is None:
            raise _missing(f"{param}.type")
        _one_of(kind, PART_TYPES, f"{param}.type")
        value = part.get(kind)
        if value is None:
            raise _missing(f"{param}.{kind}")
        if kind in TEXT_PARTS:
            if not isinstance(value, str):
                raise _invalid_type(f"{param}.{kind}", "a string")
            _check_text(value, f"{param}.{kind}")
        elif not isinstance(value, dict):
            raise _invalid_type(f"{param}.{kind}", "an object")
        elif kind == "image_url":
            _check_image(value, f"{param}.image_url")


def _check_image(image, param):
    """An image part's `url` (an address or a data: URL) and its optional `detail`."""
    url = image.get("url")
    if url is None:
        raise _missing(f"{param}.url")
    if not isinstance(url, str):
        raise _invalid_type(f"{param}.url", "a string")
    if not url or not _is_unicode(url):
        raise _bad(
            f"Invalid '{param}.url': give the image's address or a data: URL.", f"{param}.url", code="invalid_value"
        )
    detail = image.get("detail")
    if detail is not None:
        _one_of(detail, IMAGE_DETAILS, f"{param}.detail")


def _check_tool_calls(calls, where):
    if not isinstance(calls, list):
        raise _invalid_type(f"{where}.tool_calls", "an array")
    for n, call in enumerate(calls):
        param = f"{where}.tool_calls[{n}]"
        if not isinstance(call, dict):
            raise _invalid_type(param, "an object")
        if not isinstance(call.get("id"), str):
            raise _missing(f"{param}.id") if call.get("id") is None else _invalid_type(f"{param}.id", "a string")
        kind = _one_of(call.get("type", "function"), TOOL_TYPES, f"{param}.type")
        called = call.get(kind)
        if called is None:
            raise _missing(f"{param}.{kind}")
        if not isinstance(called, dict):
            raise _invalid_type(f"{param}.{kind}", "an object")
        _check_name(called.get("name"), f"{param}.{kind}.name")
        field = "arguments" if kind == "function" else "input"
        if called.get(field) is not None and not isinstance(called[field], str):
            raise _invalid_type(f"{param}.{kind}.{field}", "a string")


def _check_message(message, index):
    """One message's shape by its role, as OpenAI checks it (its type and role were checked before)."""
    where = f"messages[{index}]"
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        _check_text(content, f"{where}.content")
    elif isinstance(content, list):
        _check_parts(content, where)
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise _invalid_type(f"{where}.name", "a string")
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls is not None:
            _check_tool_calls(calls, where)
        answered = calls or any(message.get(f) is not None for f in ("function_call", "audio", "refusal"))
        if content is None and not answered:
            raise _missing(f"{where}.content")
        return
    if role == "function":
        if not isinstance(name, str):
            raise _missing(f"{where}.name")
        return
    if content is None:
        raise _missing(f"{where}.content")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        if message.get("tool_call_id") is None:
            raise _missing(f"{where}.tool_call_id")
        raise _invalid_type(f"{where}.tool_call_id", "a string")


def _check_flag(request, name):
    if request.get(name) is not None and not isinstance(request[name], bool):
        raise _invalid_type(name, "a boolean")


def _check_logit_bias(bias):
    if not isinstance(bias, dict):
        raise _invalid_type("logit_bias", "an object")
    if len(bias) > LOGIT_BIAS_MAX:
        raise _bad(f"Invalid 'logit_bias': at most {LOGIT_BIAS_MAX} tokens.", "logit_bias", code="invalid_value")
    for token, value in bias.items():
        if not TOKEN_ID.fullmatch(token):
            shown = repr(token) if len(token) <= 40 else repr(token[:37]) + "..."
            raise _bad(f"Invalid key in 'logit_bias': {shown} is not a token id.", "logit_bias", code="invalid_value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not -100 <= value <= 100:
            raise _bad(
                f"Invalid value in 'logit_bias' for token {token}: a number from -100 to 100.",
                "logit_bias",
                code="invalid_value",
            )


def _check_metadata(metadata):
    if len(metadata) > METADATA_PAIRS:
        raise _bad(f"Invalid 'metadata': at most {METADATA_PAIRS} pairs.", "metadata", code="invalid_value")
    for key, value in metadata.items():
        if len(key) > METADATA_KEY:
            raise _bad(f"Invalid 'metadata': keys are at most {METADATA_KEY} characters.", "metadata")
        if not isinstance(value, str):
            raise _invalid_type(f"metadata.{key[:METADATA_KEY]}", "a string")
        if len(value) > METADATA_VALUE:
            raise _bad(f"Invalid 'metadata.{key}': at most {METADATA_VALUE} characters.", f"metadata.{key}")


def _check_other_fields(request):
    """The fields a model call passes on as they are: their types, ranges and the values OpenAI takes."""
    _check_flag(request, "logprobs")
    _check_flag(request, "store")
    _number(request, "top_logprobs", 0, 20, integer=True)
    if request.get("top_logprobs") is not None and request.get("logprobs") is not True:
        raise _bad(
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
            "top_logprobs",
            code="invalid_value",
        )
    if request.get("logit_bias") is not None:
        _check_logit_bias(request["logit_bias"])
    if request.get("metadata") is not None:
        _check_metadata(request["metadata"])
    modalities = request.get("modalities")
    if modalities is not None:
        if not isinstance(modalities, list):
            raise _invalid_type("modalities", "an array")
        for n, modality in enumerate(modalities):
            _one_of(modality, MODALITIES, f"modalities[{n}]")
    for name in STRING_FIELDS:
        if request.get(name) is not None and not isinstance(request[name], str):
            raise _invalid_type(name, "a string")
        if request.get(name) is not None:
            _check_text(request[name], name)
            if len(request[name]) > USER_MAX_CHARS:
                raise _too_long(name, USER_MAX_CHARS)
    for name in WORD_FIELDS:
        value = request.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _invalid_type(name, "a string")
        if not WORD.fullmatch(value):
            raise _bad(
                f"Invalid value for '{name}': {value[:40]!r} is not one of the values it takes.",
                name,
                code="invalid_value",
            )
    for name in OBJECT_FIELDS:
        if request.get(name) is not None and not isinstance(request[name], dict):
            raise _invalid_type(name, "an object")


def validate_embedding_fields(body):
    """An OpenAI embeddings request's fields: only those OpenAI documents, as for chat completions."""
    _check_fields(body, EMBEDDING_FIELDS)


def validate_request(body):
    """A checked copy of an OpenAI chat-completions request; GatewayError(400) names the bad field."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    _check_fields(body, KNOWN_FIELDS)
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
        _check_message(message, index)
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
    for text in [stop] if isinstance(stop, str) else stop or ():
        _check_text(text, "stop")
    if "stream" in request and not isinstance(request["stream"], bool | None):
        raise _bad("stream must be true or false.", "stream")
    for name, kind in (("tools", list), ("response_format", dict), ("stream_options", dict), ("metadata", dict)):
        if request.get(name) is not None and not isinstance(request[name], kind):
            raise _bad(f"{name} must be {'a list' if kind is list else 'an object'}.", name)
    _check_other_fields(request)
    if request.get("response_format") is not None:
        _check_response_format(request["response_format"])
    if request.get("stream_options") is not None:
        _check_stream_options(request)
    if not TOOL_FIELDS.isdisjoint(request):
        _check_tool_fields(request)
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
