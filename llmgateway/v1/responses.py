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

import json
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


def _messages(items):
    """`input` as chat messages."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise _type_error("input", "a string or an array of input items")
    if not items:
        raise bad_request("'input' is empty: send a string or at least one input item.", "input")
    messages = []
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
            for field in ("call_id", "name", "arguments"):
                if not isinstance(item.get(field), str):
                    raise _type_error(f"{where}.{field}", "a string")
            call = {"id": item["call_id"], "type": "function"}
            call["function"] = {"name": item["name"], "arguments": item["arguments"]}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(call)  # calls made together are one assistant message
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise _type_error(f"{where}.call_id", "a string")
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
                "function_call_output and reasoning items.",
                f"{where}.type",
            )
    return messages


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
    if choice is None or isinstance(choice, str):
        return choice  # "none", "auto", "required": checked with the chat request
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


def to_chat(body):
    """The chat completion request a Responses request asks for: (request, echo).

    `echo` holds what the Response object repeats of the request. GatewayError(400) names the field.
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
    messages = _messages(body["input"])
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _type_error("instructions", "a string")
        messages.insert(0, {"role": "system", "content": instructions})
    chat = {name: body[name] for name in SAME_FIELDS if body.get(name) is not None}
    chat["messages"] = messages
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("tools") is not None:
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("text") is not None:
        chat.update(_text_format(body["text"]))
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise _type_error("reasoning", "an object")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise _type_error("stream", "a boolean")
        if body["stream"]:
            chat["stream"] = True
            chat["stream_options"] = {"include_usage": True}
    echo = {
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "reasoning": {"effort": (reasoning or {}).get("effort"), "summary": None},
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }
    return chat, echo


def chat_param(error):
    """A chat request's refusal, its field named as the Responses request has it."""
    param = error.param
    if isinstance(param, str):
        for chat_name, name in (
            ("messages", "input"),
            ("max_completion_tokens", "max_output_tokens"),
            ("response_format", "text.format"),
            ("reasoning_effort", "reasoning.effort"),
            ("verbosity", "text.verbosity"),
        ):
            if param == chat_name or param.startswith((chat_name + "[", chat_name + ".")):
                error.param = name
                break
    return error


def _usage(usage):
    if not isinstance(usage, dict):
        return None
    prompt = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": usage.get("prompt_tokens") or 0,
        "input_tokens_details": {"cached_tokens": prompt},
        "output_tokens": usage.get("completion_tokens") or 0,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or 0,
    }


def _message_item(item_id, text, refusal=None, status="completed"):
    content = []
    if text:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _call_item(item_id, call, status="completed"):
    function = call.get("function") or call.get("custom") or {}
    if call.get("type") == "custom":
        return {
            "id": item_id,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call.get("id"),
            "name": function.get("name"),
            "input": function.get("input", ""),
        }
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.get("id"),
        "name": function.get("name"),
        "arguments": function.get("arguments", ""),
    }


def _response(request_id, created, model, echo, output, status, finish=None, usage=None):
    reason = INCOMPLETE.get(finish)
    if status == "completed" and reason is not None:
        status = "incomplete"
    return {
        "id": "resp_" + request_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
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
    output = []
    if message.get("content") or message.get("refusal"):
        output.append(_message_item("msg_" + request_id, message.get("content"), message.get("refusal")))
    for n, call in enumerate(message.get("tool_calls") or []):
        output.append(_call_item(f"fc_{request_id}_{n}", call))
    created = answer.get("created") or int(time.time())
    return _response(
        request_id, created, answer.get("model"), echo, output, "completed", choice.get("finish_reason"),
        answer.get("usage"),
    )  # fmt: skip


def _event(kind, data):
    return b"event: " + kind.encode() + b"\ndata: " + _encode(data).encode() + b"\n\n"


class _Stream:
    """Chat completion chunks in, Responses events out (bytes), numbered as OpenAI numbers them."""

    def __init__(self, echo, request_id, model):
        self.echo, self.request_id, self.model = echo, request_id, model
        self.created = int(time.time())
        self.sequence = 0
        self.output = []  # finished items
        self.open = None  # the item being streamed: ("message", text parts) or ("call", index)
        self.text = ""
        self.calls = {}  # a tool call's index in the chunks: its item
        self.finish = None
        self.usage = None

    def emit(self, kind, **data):
        event = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return _event(kind, event)

    def snapshot(self, status):
        return _response(
            self.request_id, self.created, self.model, self.echo, list(self.output), status, self.finish, self.usage
        )

    def start(self):
        yield self.emit("response.created", response=self.snapshot("in_progress"))
        yield self.emit("response.in_progress", response=self.snapshot("in_progress"))

    def _close(self):
        if self.open is None:
            return
        kind, item = self.open
        self.open = None
        index = len(self.output)
        if kind == "message":
            done = _message_item(item["id"], self.text)
            part = done["content"][0]
            yield self.emit(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=self.text,
                logprobs=[],
            )
            yield self.emit(
                "response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=part
            )
        else:
            done = dict(item, status="completed")
            if done["type"] == "function_call":
                yield self.emit(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=done["name"],
                    arguments=done["arguments"],
                )
            else:
                yield self.emit(
                    "response.custom_tool_call_input.done", item_id=item["id"], output_index=index, input=done["input"]
                )
        self.output.append(done)
        yield self.emit("response.output_item.done", output_index=index, item=done)

    def chunk(self, chunk):
        if not isinstance(chunk, dict):
            return
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self.open is None or self.open[0] != "message":
                    yield from self._close()
                    item = _message_item("msg_" + self.request_id, "", status="in_progress")
                    self.open, self.text = ("message", item), ""
                    index = len(self.output)
                    yield self.emit("response.output_item.added", output_index=index, item=item)
                    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                    yield self.emit(
                        "response.content_part.added",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        part=part,
                    )
                self.text += text
                yield self.emit(
                    "response.output_text.delta",
                    item_id=self.open[1]["id"],
                    output_index=len(self.output),
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            for call in delta.get("tool_calls") or []:
                yield from self._call(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def _call(self, call):
        index = call.get("index", 0)
        function = call.get("function") or call.get("custom") or {}
        if index not in self.calls:
            yield from self._close()
            item = _call_item(f"fc_{self.request_id}_{len(self.calls)}", dict(call, function=function), "in_progress")
            item["arguments" if item["type"] == "function_call" else "input"] = ""
            self.calls[index] = item
            self.open = ("call", item)
            yield self.emit("response.output_item.added", output_index=len(self.output), item=item)
        item = self.calls[index]
        piece = function.get("arguments") if item["type"] == "function_call" else function.get("input")
        if piece and self.open is not None and self.open[1] is item:
            if item["type"] == "function_call":
                item["arguments"] += piece
                kind = "response.function_call_arguments.delta"
            else:
                item["input"] += piece
                kind = "response.custom_tool_call_input.delta"
            yield self.emit(kind, item_id=item["id"], output_index=len(self.output), delta=piece)

    def end(self):
        yield from self._close()
        final = self.snapshot("completed")
        yield self.emit(
            "response.completed" if final["status"] == "completed" else "response.incomplete", response=final
        )

    def failed(self, error):
        body = error.body()["error"]
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
