"""OpenAI's legacy completions API (POST /v1/completions) over the gateway's chat completions.

The prompt becomes the user message of a chat completion, which goes through
the gateway like any other (cache, coalescing, limits, usage records); its
answer comes back as a `text_completion`, whole or streamed. The chat models
behind the gateway answer the prompt rather than continue it, as OpenAI's own
chat models do through this API. What only a raw completion model can do
(`suffix` for fill-in-the-middle, `echo`, `best_of`, several prompts at once)
is refused with a 400 naming the field.
"""

from llmgateway.gateway import GatewayError
from llmgateway.gateway.errors import bad_request

# Passed on under the same name; the chat request checks them.
SAME_FIELDS = (
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "user",
    "seed",
    "cache",
)
FIELDS = frozenset(SAME_FIELDS) | {"prompt", "stream", "stream_options", "echo", "best_of", "suffix", "logprobs"}


def to_chat(body):
    """The chat completion request a completions request asks for. GatewayError(400) names the field."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise bad_request(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0], code="unknown_parameter")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, list):
        raise bad_request(
            "'prompt' must be one string: this gateway answers one prompt a request (token arrays and several "
            "prompts are not taken).",
            "prompt",
        )
    if not isinstance(prompt, str):
        raise bad_request(
            "Missing required parameter: 'prompt' (a string).", "prompt", code="missing_required_parameter"
        )
    if body.get("suffix"):
        raise bad_request("'suffix' is not supported: the models behind this gateway are chat models.", "suffix")
    if body.get("echo"):
        raise bad_request("'echo' is not supported: the models behind this gateway are chat models.", "echo")
    if body.get("best_of") not in (None, 1):
        raise bad_request("'best_of' is not supported: ask for several answers with 'n'.", "best_of")
    chat = {name: body[name] for name in SAME_FIELDS if body.get(name) is not None}
    chat["messages"] = [{"role": "user", "content": prompt}]
    logprobs = body.get("logprobs")
    if logprobs is not None:
        if type(logprobs) is not int or not 0 <= logprobs <= 5:
            raise bad_request("'logprobs' must be a whole number from 0 to 5.", "logprobs", code="invalid_value")
        chat["logprobs"] = True
        chat["top_logprobs"] = logprobs
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise bad_request("Invalid type for 'stream': expected a boolean.", "stream", code="invalid_type")
        if body["stream"]:
            chat["stream"] = True
            if body.get("stream_options") is not None:
                chat["stream_options"] = body["stream_options"]
    elif body.get("stream_options") is not None:
        chat["stream_options"] = body["stream_options"]  # refused by the chat request's checks, naming it
    return chat


def _logprobs(choice):
    """A chat choice's log probabilities in the completions shape (tokens, token_logprobs, top_logprobs)."""
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    offsets, at = [], 0
    for part in content:
        offsets.append(at)
        at += len(part.get("token") or "")
    return {
        "tokens": [part.get("token") for part in content],
        "token_logprobs": [part.get("logprob") for part in content],
        "top_logprobs": [{top["token"]: top["logprob"] for top in part.get("top_logprobs") or []} for part in content],
        "text_offset": offsets,
    }


def _choice(choice, text):
    return {
        "text": text,
        "index": choice.get("index", 0),
        "logprobs": _logprobs(choice),
        "finish_reason": choice.get("finish_reason"),
    }


def completion(answer):
    """A chat completion (dict) as a text_completion."""
    choices = [_choice(c, (c.get("message") or {}).get("content") or "") for c in answer.get("choices") or []]
    result = {
        "id": "cmpl-" + str(answer.get("id") or "").removeprefix("chatcmpl-"),
        "object": "text_completion",
        "created": answer.get("created"),
        "model": answer.get("model"),
        "choices": choices,
    }
    if answer.get("usage") is not None:
        result["usage"] = answer["usage"]
    if answer.get("system_fingerprint") is not None:
        result["system_fingerprint"] = answer["system_fingerprint"]
    return result


def chunk(chat_chunk):
    """A chat completion chunk as a text_completion chunk (None for one that carries nothing: the role's)."""
    choices = []
    for choice in chat_chunk.get("choices") or []:
        text = (choice.get("delta") or {}).get("content") or ""
        if text or choice.get("finish_reason"):
            choices.append(_choice(choice, text))
    if not choices and chat_chunk.get("usage") is None:
        return None
    result = completion(dict(chat_chunk, choices=[]))
    result["choices"] = choices
    return result
