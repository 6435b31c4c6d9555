"""The site's URLs plus the benchmark's floor view (never mounted in production)."""

import json

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from corporate.urls import handler400, handler403, handler404, handler500  # noqa: F401
from corporate.urls import urlpatterns as site_urlpatterns

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
_client = None


@csrf_exempt
def floor(request):
    """Reads the bearer token, makes one Redis round trip and returns a fixed JSON body."""
    global _client
    if _client is None:
        from django_redis import get_redis_connection

        _client = get_redis_connection("default")
    token = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
    _client.get("bench:floor:" + token[:24])
    return HttpResponse(FIXED_BODY, content_type="application/json")


# The floor resolves first, like /v1/ does in the site's URLs.
urlpatterns = [path("bench/floor", floor), *site_urlpatterns]
