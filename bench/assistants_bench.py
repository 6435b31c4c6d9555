"""Chat-turn latency: time to first streamed token and total, split into retrieval, prompt, gateway and save.

    .venv/bin/python bench/assistants_bench.py [--turns 30] [--delay 0.2]

Runs against a throw-away database (SQLite under a temp folder, or
DATABASE_URL when set) with the demo documents ingested, for two models:
the offline provider, and an OpenAI-compatible upstream (the local fake
server) that waits --delay seconds before answering. Each question is asked
once as a miss and once again as a cache hit. Also prints the database
queries per chat turn, for a short and a long conversation.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "How many vacation days do employees get?",
    "What is the hotel limit per night?",
    "How do I connect to the VPN?",
    "How much can I spend on meals when travelling?",
    "When are expense reports due?",
    "Who approves business travel?",
    "How do I reset my password?",
    "Where can I park at the office?",
    "What is the policy on working from home?",
    "How do I report a lost laptop?",
]


def setup_django():
    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="assistants-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_turns(assistant, user, questions):
    from assistants import answering
    from assistants.models import Conversation

    rows = []
    for question in questions:
        conversation = Conversation.objects.create(assistant=assistant, user=user)
        started = time.perf_counter()
        turn = answering.start_turn(assistant, conversation, user, question)
        first = None
        for event, _ in turn.events():
            if event == "delta" and first is None:
                first = (time.perf_counter() - started) * 1000
        total = (time.perf_counter() - started) * 1000
        t = turn.timings
        rows.append(
            {
                "first": first or total,
                "total": total,
                "retrieval": t["retrieval_ms"],
                "prompt": t["prompt_ms"],
                "gateway": t["gateway_ms"],
                "save": t["save_ms"],
                "hit": turn.answer.cache_hit,
            }
        )
    return rows


def summarise(label, rows):
    def med(key):
        return statistics.median(r[key] for r in rows)

    print(
        f"{label:<34} first token p50 {med('first'):7.1f} ms  p95 {percentile([r['first'] for r in rows], 95):7.1f} ms"
        f"  total p50 {med('total'):7.1f} ms  | retrieval {med('retrieval'):5.1f}  prompt {med('prompt'):4.1f}"
        f"  gateway {med('gateway'):6.1f}  save {med('save'):4.1f} ms  (hits {sum(r['hit'] for r in rows)}/{len(rows)})"
    )


def queries_per_turn(assistant, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from assistants import answering
    from assistants.models import Conversation, Message

    conversation = Conversation.objects.create(assistant=assistant, user=user)
    for _ in answering.start_turn(assistant, conversation, user, "Warm-up question about meals").events():
        pass
    counts = []
    for extra in (0, 200):
        for i in range(extra):
            Message.objects.create(conversation=conversation, role="user", content=f"q{i}")
            Message.objects.create(conversation=conversation, role="assistant", content=f"a{i}")
        with CaptureQueriesContext(connection) as ctx:
            turn = answering.start_turn(assistant, conversation, user, f"What about meals? ({extra})")
            for _ in turn.events():
                pass
        counts.append((conversation.messages.count(), len(ctx.captured_queries)))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    setup_django()

    from django.contrib.auth import get_user_model

    from assistants.models import Assistant
    from corporate import demo
    from documents.models import Document
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    demo.populate()
    from documents.ingestion import process

    for document in Document.objects.filter(status="queued"):
        process(document.pk)
    user = get_user_model().objects.get(email=demo.DEMO_ADMIN_EMAIL)
    offline = Assistant.objects.get(name="HR helpdesk")
    print(
        f"database: {os.environ.get('DATABASE_URL') or 'SQLite'}; documents ready: "
        f"{Document.objects.filter(status='ready').count()}; turns per row: {args.turns}"
    )

    questions = [QUESTIONS[i % len(QUESTIONS)] + f" (#{i})" for i in range(args.turns)]
    summarise("offline, miss", run_turns(offline, user, questions))
    summarise("offline, cache hit", run_turns(offline, user, questions))

    server = FakeOpenAI(latency=args.delay, stable=True).start()
    try:
        ModelConfig.objects.update_or_create(
            name="bench-upstream",
            defaults={
                "provider": "openai-compatible",
                "base_url": server.base_url,
                "upstream_model": "bench",
                "max_retries": 0,
            },
        )
        remote = Assistant.objects.create(workspace=offline.workspace, name="Remote", model_name="bench-upstream")
        summarise(f"upstream {args.delay * 1000:.0f} ms, miss", run_turns(remote, user, questions))
        summarise(f"upstream {args.delay * 1000:.0f} ms, cache hit", run_turns(remote, user, questions))
    finally:
        server.stop()

    for length, count in queries_per_turn(offline, user):
        print(f"queries per chat turn with {length:>3} messages already in the conversation: {count}")


if __name__ == "__main__":
    main()
