"""OpenAI's Responses API (POST /v1/responses) over the gateway's chat completions.

A Responses request becomes a chat completion request (`to_chat`), goes through
the gateway like any other (cache, coalescing, limits, usage records, the
model's fallbacks) and its answer becomes a Response object (`response_object`)
or, streamed, Responses events (`events`). Two requests that ask the same thing,
one through /v1/responses and one through /v1/chat/completions, share a cache
entry.

The gateway keeps no responses: `previous_response_id`, `conversation` and
`background` are refused with a 400 naming the field, and a client sends the
whole conversation in `input` (as it does with `store: false`). The tools it
passes on are the client's own (function and custom tools); the built-in tools
of OpenAI's platform (web search, file search, computer use…) are refused.
"""

import copy
import json
import re
import time

from llmgateway.gateway import GatewayError
from llmgateway.gateway.errors import bad_request

_encode = json.JSONEncoder(separators=(",", ":")).encode

# Fields read here; any other is refused, as OpenAI refuses an unknown argument.
FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "metadata",
        "user",
        "store",
        "include",
        "truncation",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "max_tool_calls",
        "top_logprobs",
        "cache",
    }
)
# Fields that need responses kept on the server, which the gateway does not do.
KEPT_FIELDS = {
    "previous_response_id": "this gateway keeps no responses: send the whole conversation in 'input'",
    "conversation": "this gateway keeps no conversations: send the whole conversation in 'input'",
    "background": "this gateway answers while the request waits: leave 'background' out",
    "prompt": "this gateway keeps no prompt templates: send the prompt in 'instructions' and 'input'",
}
# Passed on under the same name.
SAME_FIELDS = (
    "model",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "metadata",
    "user",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "cache",
)
MESSAGE_ROLES = ("user", "assistant", "system", "developer")
TRUNCATIONS = ("auto", "disabled")
TOOL_CHOICES = ("none", "auto", "required")
LOGPROBS = "message.output_text.logprobs"  # an `include` that asks for the answer's log probabilities
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _type_error(param, kind):
    return bad_request(f"Invalid type for '{param}': expected {kind}.", param, code="invalid_type")


def _text_of(parts, param, kinds):
    """The text of a list of content parts of the given kinds (output_text, input_text, refusal)."""
    texts = []
    for n, part in enumerate(parts):
        where = f"{param}[{n}]"
        if not isinstance(part, dict):
            raise _type_error(where, "an object")
        kind = part.get("type")
        if kind not in kinds:
            raise bad_request(f"Invalid value for '{where}.type': expected one of {', '.join(kinds)}.", f"{where}.type")
        field = "refusal" if kind == "refusal" else "text"
        if not isinstance(part.get(field), str):
            raise _type_error(f"{where}.{field}", "a string")
        texts.append(part[field])
    return "".join(texts)


def _user_parts(parts, param):
    """input_text and input_image parts as chat content parts."""
    converted = []
    for n, part in enumerate(parts):
        where = f"{param}[{n}]"
        if not isinstance(part, dict):
            raise _type_error(where, "an object")
        kind = part.get("type")
        if kind == "input_text":
            if not isinstance(part.get("text"), str):
                raise _type_error(f"{where}.text", "a string")
            converted.append({"type": "text", "text": part["text"]})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise bad_request(
                    f"'{where}.image_url' must be an image's URL or data: URL (files kept at OpenAI are not reachable "
                    "through this gateway).",
                    f"{where}.image_url",
                )
            image = {"url": url}
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            converted.append({"type": "image_url", "image_url": image})
        elif kind in ("input_file", "input_audio"):
            raise bad_request(
                f"'{where}': {kind} parts are not passed on by this gateway; send the file's text as input_text.",
                f"{where}.type",
            )
        else:
            raise bad_request(
                f"Invalid value for '{where}.type': expected one of input_text, input_image.", f"{where}.type"
            )
    return converted


def _called(messages, call):
    """A tool call the client sends back: on the assistant message before it (its text and calls are one turn)."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _strings(item, where, fields):
    for field in fields:
        if not isinstance(item.get(field), str):
            raise _type_error(f"{where}.{field}", "a string")


def _messages(items):
    """`input` as chat messages, and the input item each message came from (for errors)."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}], [None]
    if not isinstance(items, list):
        raise _type_error("input", "a string or an array of input items")
    if not items:
        raise bad_request("'input' is empty: send a string or at least one input item.", "input")
    messages, origins = [], []
    for n, item in enumerate(items):
        where = f"input[{n}]"
        if not isinstance(item, dict):
            raise _type_error(where, "an object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in MESSAGE_ROLES:
                raise bad_request(
                    f"Invalid value for '{where}.role': expected one of {', '.join(MESSAGE_ROLES)}.", f"{where}.role"
                )
            content = item.get("content")
            if isinstance(content, list):
                if role == "assistant":
                    content = _text_of(content, f"{where}.content", ("output_text", "refusal", "input_text"))
                elif role == "user":
                    content = _user_parts(content, f"{where}.content")
                else:
                    content = _text_of(content, f"{where}.content", ("input_text",))
            elif not isinstance(content, str):
                raise _type_error(f"{where}.content", "a string or an array of content parts")
            messages.append({"role": role, "content": content})
        elif kind == "function_call":
            _strings(item, where, ("call_id", "name", "arguments"))
            function = {"name": item["name"], "arguments": item["arguments"]}
            _called(messages, {"id": item["call_id"], "type": "function", "function": function})
        elif kind == "custom_tool_call":
            _strings(item, where, ("call_id", "name", "input"))
            custom = {"name": item["name"], "input": item["input"]}
            _called(messages, {"id": item["call_id"], "type": "custom", "custom": custom})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            _strings(item, where, ("call_id",))
            output = item.get("output")
            if isinstance(output, list):
                output = _text_of(output, f"{where}.output", ("input_text", "output_text"))
            elif not isinstance(output, str):
                raise _type_error(f"{where}.output", "a string or an array of input_text parts")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
        elif kind == "reasoning":
            continue  # a reasoning model's own notes: chat completions take none back
        elif kind == "item_reference":
            raise bad_request(
                f"'{where}': this gateway keeps no items to refer to; send the item itself.", f"{where}.type"
            )
        else:
            raise bad_request(
                f"Invalid value for '{where}.type': this gateway takes message, function_call, "
                "function_call_output, custom_tool_call, custom_tool_call_output and reasoning items.",
                f"{where}.type",
            )
        origins += [n] * (len(messages) - len(origins))
    return messages, origins


def _tools(tools):
    if not isinstance(tools, list):
        raise _type_error("tools", "an array")
    converted = []
    for n, tool in enumerate(tools):
        where = f"tools[{n}]"
        if not isinstance(tool, dict):
            raise _type_error(where, "an object")
        kind = tool.get("type")
        if kind == "function":
            function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
            converted.append({"type": "function", "function": function})
        elif kind == "custom":
            custom = {k: tool[k] for k in ("name", "description", "format") if k in tool}
            converted.append({"type": "custom", "custom": custom})
        else:
            raise bad_request(
                f"Invalid value for '{where}.type': this gateway passes on function and custom tools; "
                f"OpenAI's built-in tools ({kind!r}) are not available through it.",
                f"{where}.type",
            )
    return converted


def _tool_choice(choice):
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise bad_request(
                f"Invalid value for 'tool_choice': expected one of {', '.join(TOOL_CHOICES)} or an object.",
                "tool_choice",
                "invalid_value",
            )
        return choice
    if not isinstance(choice, dict):
        raise _type_error("tool_choice", "a string or an object")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        return {"type": kind, kind: {"name": choice.get("name")}}
    raise bad_request(
        "Invalid value for 'tool_choice.type': this gateway takes 'none', 'auto', 'required' or a function or "
        "custom tool by name.",
        "tool_choice.type",
    )


def _text_format(text):
    if not isinstance(text, dict):
        raise _type_error("text", "an object")
    chat = {}
    fmt = text.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict):
            raise _type_error("text.format", "an object")
        kind = fmt.get("type")
        if kind == "json_schema":
            schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
            chat["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif kind in ("text", "json_object"):
            chat["response_format"] = {"type": kind}
        else:
            raise bad_request(
                "Invalid value for 'text.format.type': expected one of text, json_object, json_schema.",
                "text.format.type",
            )
    if text.get("verbosity") is not None:
        chat["verbosity"] = text["verbosity"]
    return chat


def _check(body):
    """The fields read here only (not passed on as they are): their types and values, as OpenAI checks them."""
    truncation = body.get("truncation")
    if truncation is not None and truncation not in TRUNCATIONS:
        raise bad_request(
            f"Invalid value for 'truncation': expected one of {', '.join(TRUNCATIONS)}.", "truncation", "invalid_value"
        )
    include = body.get("include")
    if include is not None and not (isinstance(include, list) and all(isinstance(i, str) for i in include)):
        raise _type_error("include", "an array of strings")
    for name in ("store", "stream"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise _type_error(name, "a boolean")
    calls = body.get("max_tool_calls")
    if calls is not None and (type(calls) is not int or calls < 1):
        raise bad_request("Invalid 'max_tool_calls': expected a whole number of at least 1.", "max_tool_calls")
    for name in ("reasoning", "stream_options"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise _type_error(name, "an object")


def to_chat(body):
    """The chat completion request a Responses request asks for: (request, echo, origins).

    `echo` holds what the Response object repeats of the request; `origins` the input item of each message
    (for `renamed`). GatewayError(400) names the field.
    """
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.")
    for name, why in KEPT_FIELDS.items():
        if body.get(name) not in (None, False):
            raise bad_request(f"'{name}' is not supported: {why}.", name, code="unsupported_parameter")
    unknown = sorted(set(body) - FIELDS - set(KEPT_FIELDS))
    if unknown:
        raise bad_request(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0], code="unknown_parameter")
    if "input" not in body:
        raise bad_request("Missing required parameter: 'input'.", "input", code="missing_required_parameter")
    _check(body)
    messages, origins = _messages(body["input"])
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _type_error("instructions", "a string")
        messages.insert(0, {"role": "system", "content": instructions})
        origins.insert(0, "instructions")
    chat = {name: body[name] for name in SAME_FIELDS if body.get(name) is not None}
    chat["messages"] = messages
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    tools = body.get("tools")
    if tools:
        chat["tools"] = _tools(tools)
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(body["tool_choice"])
    else:
        if tools is not None and not isinstance(tools, list):
            raise _type_error("tools", "an array")
        # No tools (an agent without any sends an empty list, with its tool settings): nothing to choose among.
        if isinstance(_tool_choice(body.get("tool_choice")), dict):
            raise bad_request(
                "Invalid value for 'tool_choice': it names a tool, and 'tools' is empty.",
                "tool_choice",
                "invalid_value",
            )
        chat.pop("parallel_tool_calls", None)
    if body.get("text") is not None:
        chat.update(_text_format(body["text"]))
    reasoning = body.get("reasoning") or {}
    if reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    if body.get("top_logprobs") or LOGPROBS in (body.get("include") or ()):
        chat["logprobs"] = True
        if body.get("top_logprobs") is not None:
            chat["top_logprobs"] = body["top_logprobs"]
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    echo = {
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": tools or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }
    return chat, echo, origins


# A chat request's field names, as a Responses request has them.
RENAMES = (
    (re.compile(r"\bmax_completion_tokens\b"), "max_output_tokens"),
    (re.compile(r"\bresponse_format\.json_schema\b"), "text.format"),
    (re.compile(r"\bresponse_format\b"), "text.format"),
    (re.compile(r"\breasoning_effort\b"), "reasoning.effort"),
    (re.compile(r"(?<![.\w])verbosity\b"), "text.verbosity"),
    (re.compile(r"\b(tools\[\d+\])\.(?:function|custom)\b"), r"\1"),
    (re.compile(r"\btool_choice\.(?:function|custom)\b"), "tool_choice"),
)
MESSAGE = re.compile(r"\bmessages\[(\d+)\]")


def renamed(error, origins):
    """A chat request's refusal, its fields named as in the Responses request (`input[3]`, `max_output_tokens`)."""

    def item(match):
        n = int(match.group(1))
        origin = origins[n] if n < len(origins) else None
        return "instructions" if origin == "instructions" else "input" if origin is None else f"input[{origin}]"

    def rename(text):
        if not isinstance(text, str):
            return text
        text = MESSAGE.sub(item, text)
        text = re.sub(r"\bmessages\b", "input", text)
        for pattern, name in RENAMES:
            text = pattern.sub(name, text)
        return text

    error.param, error.message = rename(error.param), rename(error.message)
    error.args = (error.message,)
    return error


def _usage(usage):
    if not isinstance(usage, dict):
        return None
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": usage.get("prompt_tokens") or 0,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": usage.get("completion_tokens") or 0,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or 0,
    }


def _text_part(text="", logprobs=None):
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": list(logprobs or [])}


def _message_item(item_id, status, content):
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _call_item(item_id, call, status="completed"):
    """A chat tool call as a function_call (or custom_tool_call) output item."""
    if call.get("type") == "custom" or "custom" in call:
        custom = call.get("custom") or {}
        return {
            "id": item_id,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call.get("id"),
            "name": custom.get("name"),
            "input": custom.get("input") or "",
        }
    function = call.get("function") or {}
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.get("id"),
        "name": function.get("name"),
        "arguments": function.get("arguments") or "",
    }


def _status(finish):
    return "incomplete" if finish in INCOMPLETE else "completed"


def _response(request_id, created, model, echo, output, status, finish=None, usage=None, error=None):
    reason = INCOMPLETE.get(finish)
    if status == "completed" and reason is not None:
        status = "incomplete"
    return {
        "id": "resp_" + request_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        **echo,
        "model": model,
        "output": output,
        "previous_response_id": None,
        "store": False,
        "usage": _usage(usage),
    }


def response_object(answer, echo, request_id):
    """A chat completion (dict) as a Response object."""
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    content = []
    if message.get("content"):
        content.append(_text_part(message["content"], ((choice.get("logprobs") or {}).get("content"))))
    if message.get("refusal"):
        content.append({"type": "refusal", "refusal": message["refusal"]})
    output = [_message_item("msg_" + request_id, _status(finish), content)] if content else []
    for n, call in enumerate(message.get("tool_calls") or []):
        output.append(_call_item(f"fc_{request_id}_{n}", call))
    created = answer.get("created") or int(time.time())
    return _response(request_id, created, answer.get("model"), echo, output, "completed", finish, answer.get("usage"))


def _event(kind, data):
    return b"event: " + kind.encode() + b"\ndata: " + _encode(data).encode() + b"\n\n"


class _Stream:
    """Chat completion chunks in, Responses events out (bytes), numbered as OpenAI numbers them.

    Text opens a message item (an output_text part, or a refusal part), which a tool call closes; text after a
    call opens another message. Tool calls stay open until the answer ends, so an upstream that interleaves
    several calls' arguments loses none of them.
    """

    def __init__(self, echo, request_id, model):
        self.echo, self.request_id, self.model = echo, request_id, model
        self.created = int(time.time())
        self.sequence = 0
        self.items = []  # output items, by output_index
        self.message = None  # output_index of the message being streamed
        self.calls = {}  # a tool call's index in the chunks: its output_index
        self.finish = None
        self.usage = None

    def emit(self, kind, **data):
        event = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return _event(kind, event)

    def snapshot(self, status, output=(), error=None):
        return _response(
            self.request_id, self.created, self.model, self.echo, list(output), status, self.finish, self.usage, error
        )

    def _add(self, item):
        self.items.append(item)
        return self.emit("response.output_item.added", output_index=len(self.items) - 1, item=copy.deepcopy(item))

    def start(self):
        yield self.emit("response.created", response=self.snapshot("in_progress"))
        yield self.emit("response.in_progress", response=self.snapshot("in_progress"))

    def _text(self, kind, piece, logprobs=None):
        """A piece of the answer's text (kind "output_text") or of a refusal ("refusal")."""
        if self.message is None:
            count = sum(1 for item in self.items if item["type"] == "message")
            item_id = "msg_" + self.request_id + (f"_{count}" if count else "")
            yield self._add(_message_item(item_id, "in_progress", []))
            self.message = len(self.items) - 1
        index, item = self.message, self.items[self.message]
        where = {"item_id": item["id"], "output_index": index}
        if not item["content"] or item["content"][-1]["type"] != kind:
            yield from self._part_done()
            item["content"].append(_text_part() if kind == "output_text" else {"type": "refusal", "refusal": ""})
            part = copy.deepcopy(item["content"][-1])
            yield self.emit("response.content_part.added", **where, content_index=len(item["content"]) - 1, part=part)
        part, where["content_index"] = item["content"][-1], len(item["content"]) - 1
        if kind == "output_text":
            part["text"] += piece
            part["logprobs"] += logprobs or []
            yield self.emit("response.output_text.delta", **where, delta=piece, logprobs=list(logprobs or []))
        else:
            part["refusal"] += piece
            yield self.emit("response.refusal.delta", **where, delta=piece)

    def _part_done(self):
        item = self.items[self.message]
        if not item["content"]:
            return
        part = item["content"][-1]
        where = {"item_id": item["id"], "output_index": self.message, "content_index": len(item["content"]) - 1}
        if part["type"] == "output_text":
            yield self.emit("response.output_text.done", **where, text=part["text"], logprobs=part["logprobs"])
        else:
            yield self.emit("response.refusal.done", **where, refusal=part["refusal"])
        yield self.emit("response.content_part.done", **where, part=copy.deepcopy(part))

    def _message_done(self, status="completed"):
        if self.message is None:
            return
        yield from self._part_done()
        item = self.items[self.message]
        item["status"] = status
        yield self.emit("response.output_item.done", output_index=self.message, item=copy.deepcopy(item))
        self.message = None

    def _call(self, call):
        if not isinstance(call, dict):
            return
        key = call.get("index", 0)
        kind = "custom" if call.get("type") == "custom" or "custom" in call else "function"
        called = call.get(kind) or {}
        field = "arguments" if kind == "function" else "input"
        if key not in self.calls:
            yield from self._message_done()
            head = {"id": call.get("id"), "type": kind, kind: {"name": called.get("name")}}
            yield self._add(_call_item(f"fc_{self.request_id}_{len(self.calls)}", head, "in_progress"))
            self.calls[key] = len(self.items) - 1
        index = self.calls[key]
        item = self.items[index]
        if call.get("id") and not item["call_id"]:
            item["call_id"] = call["id"]
        if called.get("name") and not item["name"]:
            item["name"] = called["name"]
        piece = called.get(field)
        if isinstance(piece, str) and piece:
            item[field] += piece
            delta = (
                "response.function_call_arguments.delta"
                if kind == "function"
                else "response.custom_tool_call_input.delta"
            )
            yield self.emit(delta, item_id=item["id"], output_index=index, delta=piece)

    def chunk(self, chunk):
        if not isinstance(chunk, dict):
            return
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                logprobs = (choice.get("logprobs") or {}).get("content")
                yield from self._text("output_text", delta["content"], logprobs)
            if delta.get("refusal"):
                yield from self._text("refusal", delta["refusal"])
            for call in delta.get("tool_calls") or []:
                yield from self._call(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def end(self):
        yield from self._message_done(_status(self.finish))
        for index in sorted(self.calls.values()):
            item = self.items[index]
            item["status"] = "completed"
            where = {"item_id": item["id"], "output_index": index}
            if item["type"] == "function_call":
                yield self.emit(
                    "response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]
                )
            else:
                yield self.emit("response.custom_tool_call_input.done", **where, input=item["input"])
            yield self.emit("response.output_item.done", output_index=index, item=copy.deepcopy(item))
        final = self.snapshot("completed", self.items)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        yield self.emit(kind, response=final)

    def failed(self, error):
        """The upstream failed mid-answer: the response as far as it got, failed, then the error."""
        body = error.body()["error"]
        for item in self.items:
            if item["status"] == "in_progress":
                item["status"] = "incomplete"
        failure = {"code": body["code"] or "server_error", "message": body["message"]}
        yield self.emit("response.failed", response=self.snapshot("failed", self.items, failure))
        yield self.emit("error", code=body["code"], message=body["message"], param=body["param"], error=body)


def events(first, rest, echo, request_id, model):
    """The Responses events of a streamed chat completion: its first chunk (or None), then the others."""
    stream = _Stream(echo, request_id, model)
    yield from stream.start()
    try:
        if first is not None:
            yield from stream.chunk(first)
        for chunk in rest:
            yield from stream.chunk(chunk)
    except GatewayError as error:
        yield from stream.failed(error)
        return
    yield from stream.end()
