"""CPU time of one /v1 cache hit and one miss through the site's WSGI application, in one process.

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/N CACHE_KEY_PREFIX=... \\
        .venv/bin/python bench/hotpath_cpu.py [--requests 2000] [--profile hit|miss] [--metering off|on]

No HTTP server: requests are WSGI environs handed to `corporate.wsgi.application`
(the /v1 handler and its middleware, the view, the gateway, the store), so
the figure is the application's own CPU per request, measured with
`time.process_time` (steadier than the wall clock on a shared machine). The
upstream is the local fake server in a process of its own, answering at once.
Misses are new prompts; hits repeat one prompt. With --profile, the cProfile
listing of that kind of request (by own time) follows the figures. With
--metering limits (the default) a miss's lookup carries the workspace's
limit reservation and its coalescing lock takes a round trip of its own;
with records or off the lock rides on the lookup, as for a key without limits.

CPU time moves with the machine's load. For counts that do not, run it under
callgrind, which counts the instructions of the measured requests only:

    valgrind --tool=callgrind --toggle-collect=functools_reduce --callgrind-out-file=/dev/null \
        .venv/bin/python bench/hotpath_cpu.py --requests 200 --only hit

and divide "Collected" by the number of requests (200 hits, or a tenth of it as misses).
The database must be migrated; the benchmark adds a workspace "hotpath-cpu",
a key and a model on first use and keeps them.
"""

import argparse
import cProfile
import functools
import gc
import io
import json
import os
import pstats
import resource
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
MODEL = f"hotpath-upstream-{os.getpid()}"  # a model of this run's own: runs at once do not meet
BATCHES = 10
_clock = time.thread_time if os.environ.get("HOTPATH_CLOCK") == "thread" else time.process_time


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup(base_url, metering):
    from django.contrib.auth import get_user_model

    from llmgateway.management.commands.add_model import add_model
    from llmgateway.models import ApiKey, Limit
    from workspaces.models import Membership, Workspace

    user, _ = get_user_model().objects.get_or_create(email="hotpath-cpu@example.com")
    workspace, _ = Workspace.objects.get_or_create(
        slug="hotpath-cpu", defaults={"name": "Hot path", "created_by": user}
    )
    Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": "owner"})
    add_model(
        MODEL,
        provider="openai-compatible",
        base_url=base_url,
        upstream_model="fake-model",
        timeout_seconds=600,  # callgrind runs a request 50 times slower
        max_retries=0,
        price_input_per_1k="0.5",
        price_output_per_1k="1.5",
    )
    Limit.objects.filter(kind="workspace", workspace=workspace).delete()
    if metering == "limits":
        Limit.objects.create(kind="workspace", workspace=workspace, rpm=10**9, tpm=2 * 10**9, daily_budget=10**6)
    _, full = ApiKey.create(workspace, "hotpath-cpu", user, scopes=["completions", "read"])
    return full


def environ(key, body):
    data = json.dumps(body).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/chat/completions",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def request(app, key, body):
    status = []

    def start_response(code, headers, exc_info=None):
        status.append((code, dict(headers)))

    result = app(environ(key, body), start_response)
    try:
        data = b"".join(result)
    finally:
        result.close()
    return status[0][0], status[0][1], data


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="hits measured (misses: a tenth)")
    parser.add_argument("--profile", choices=("hit", "miss"))
    parser.add_argument("--metering", choices=("off", "records", "limits"), default="limits")
    parser.add_argument("--only", choices=("hit", "miss"), help="measure one kind of request")
    args = parser.parse_args()

    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "llmgateway.tests.fake_openai", "--port", str(port), "--delay", "0"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import django

        django.setup()
        from django.conf import settings

        from corporate.wsgi import application
        from llmgateway import usage

        if args.metering == "off":
            settings.LLM_USAGE_HOOK = "llmgateway.usage.UsageHook"
            usage.hook.reset()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        key = setup(f"http://127.0.0.1:{port}/v1", args.metering)
        run = uuid.uuid4().hex[:8]
        hit = {"model": MODEL, "messages": [{"role": "user", "content": f"What is the refund policy? {run}"}]}
        for _ in range(50):  # warm: the key's and the workspace's records, the entry, the memos
            code, headers, data = request(application, key, hit)
            assert code.startswith("200"), data[:300]
        assert headers["X-Cache"] == "HIT", headers

        def misses(count, tag):
            for i in range(count):
                body = {"model": MODEL, "messages": [{"role": "user", "content": f"miss {run} {tag} {i}"}]}
                code, headers, data = request(application, key, body)
                assert code.startswith("200") and headers["X-Cache"] == "MISS", (code, data[:300])

        misses(20, "warm")
        # As a gunicorn worker does once the application is loaded (deploy/gunicorn.conf.py): what is
        # loaded by now is left out of garbage collections, whose timing would otherwise blur the counts.
        gc.collect()
        gc.freeze()
        if os.environ.get("HOTPATH_STEADY"):
            # Under callgrind a request is ~50x slower, so timed flushes come every few requests and
            # their count moves with the machine's speed: flush by count only (per 200 records / events).
            from llmgateway.cache import stats
            from llmgateway.metering import records

            stats.FLUSH_INTERVAL = records.FLUSH_INTERVAL = 3600
        figures = {}
        kinds = [("hit", args.requests), ("miss", max(BATCHES, args.requests // 10))]
        for kind, count in [k for k in kinds if args.only in (None, k[0])]:
            profiler = cProfile.Profile(time.process_time) if args.profile == kind else None
            if profiler:
                profiler.enable()
            # The least CPU of several batches: other work on the machine only ever adds to it.
            batches = []
            for batch in range(BATCHES):
                started = _clock()
                if kind == "hit":
                    # Through functools.reduce (a C function), so that callgrind can count this part
                    # alone: --toggle-collect=functools_reduce (see the module's docstring).
                    functools.reduce(lambda _, __: request(application, key, hit), range(count // BATCHES), None)
                else:
                    functools.reduce(lambda _, i: misses(1, f"measured {batch} {i}"), range(count // BATCHES), None)
                batches.append((_clock() - started) / (count // BATCHES) * 1e6)
            if profiler:
                profiler.disable()
            figures[kind] = min(batches)
            if profiler:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(45)
                figures[kind + "_profile"] = out.getvalue()
                if os.environ.get("HOTPATH_PROFILE_FILE"):
                    profiler.dump_stats(os.environ["HOTPATH_PROFILE_FILE"])
        measured = ", ".join(f"per {kind} {figures[kind]:.0f} µs" for kind in ("hit", "miss") if kind in figures)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"metering {args.metering}: CPU {measured} (least of {BATCHES} batches); peak RSS {rss:.0f} MB")
        for kind in ("hit", "miss"):
            if kind + "_profile" in figures:
                print(figures[kind + "_profile"])
    finally:
        upstream.terminate()
        upstream.wait(10)
        if "django" in sys.modules and sys.modules["django"].apps.apps.ready:
            from llmgateway.models import ModelConfig

            ModelConfig.objects.filter(name=MODEL).delete()


if __name__ == "__main__":
    main()
