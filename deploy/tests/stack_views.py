"""Endpoints for the stack tests: a slow query, an upload sink, a stream."""

import os
import time

from django.db import connection
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def runtime(request):
    """How this worker runs: gevent patching, cooperative psycopg2, its connection pool."""
    import psycopg2.extensions
    from gevent import monkey

    from corporate.backends.postgresql.base import all_pools

    return JsonResponse(
        {
            "pid": os.getpid(),
            "socket_patched": monkey.is_module_patched("socket"),
            "psycopg2_wait_callback": bool(psycopg2.extensions.get_wait_callback()),
            "pools": [pool.stats() for pool in all_pools()],
        }
    )


def sleep(request):
    seconds = min(float(request.GET.get("seconds", "1")), 5.0)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return JsonResponse({"pid": os.getpid(), "seconds": round(time.monotonic() - started, 3)})


@csrf_exempt
@require_POST
def upload(request):
    files = request.FILES.getlist("file")
    return JsonResponse({"files": len(files), "bytes": sum(f.size for f in files)})


def stream(request, opt_out_of_buffering):
    chunks = int(request.GET.get("chunks", "4"))
    interval = float(request.GET.get("interval", "0.4"))

    def events():
        for number in range(chunks):
            if number:
                time.sleep(interval)  # gevent-patched: other requests run meanwhile
            yield f"data: chunk {number}\n\n".encode()

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    if opt_out_of_buffering:
        response["X-Accel-Buffering"] = "no"
    return response
