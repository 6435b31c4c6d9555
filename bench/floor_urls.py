"""The floor views of the gateway benchmark (never mounted by the site)."""

import json

from django.core.cache import cache
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench.floor_raw import forward

# A body the size of a cached chat completion.
FIXED_BODY = json.dumps(
    {
        "id": "chatcmpl-floor",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-upstream",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Echo: What is the refund policy for annual plans?"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20},
    },
    separators=(",", ":"),
).encode()


@csrf_exempt
def floor(request):
    """Reads the bearer token and the body, makes one django-redis get_many, returns a fixed JSON body."""
    token = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
    request.body  # noqa: B018 - read like the gateway reads it
    cache.get_many(["bench:floor:" + token[:24], "bench:floor:entry"])
    return HttpResponse(FIXED_BODY, content_type="application/json")


@csrf_exempt
def proxy(request):
    """The floor of a miss: the floor's reads, then the body posted to the upstream on a kept connection and
    its answer returned as it came (no validation, no cache, no records: the thinnest proxy Django makes)."""
    token = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
    body = request.body
    cache.get_many(["bench:floor:" + token[:24], "bench:floor:entry"])
    status, _, data = forward(body)
    return HttpResponse(data, status=status, content_type="application/json")


urlpatterns = [path("v1/chat/completions", floor), path("proxy/v1/chat/completions", proxy)]
