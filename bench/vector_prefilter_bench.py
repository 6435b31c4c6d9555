"""Quantized pre-filters for SQLite's nearest-passages scan: recall and cost against the exact scan.

    .venv/bin/python bench/search_bench.py --sqlite --reuse --fill-only      # the kept fill, once
    .venv/bin/python bench/vector_prefilter_bench.py [--chunks 100000] [--queries 100]

Reads the search workspace's vectors from the kept SQLite fill of bench/search_bench.py
(var/search-bench/sqlite-N.sqlite3) and the benchmark's own questions (the same draw), then:

1. recall@20 after exact re-scoring of the k candidates of each coarse pass (numpy, exact
   arithmetic of each scheme): int8 (sqlite-vec `vec_quantize_int8` 'unit'), sign bits of the
   vectors less their mean (bit[256]), random-hyperplane bits of the same (bit[1024]), and the
   first principal components (float);
2. processor time of sqlite-vec 0.1.9's `vec0` k-nearest scan over the same vectors stored as
   float[256], int8[256] and bit[256] (tables in a scratch file under var/search-bench/), for
   several k: what a coarse pass that keeps k candidates costs before any re-scoring.
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
FILL_DIR = ROOT / "var" / "search-bench"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    fill = FILL_DIR / f"sqlite-{args.chunks}.sqlite3"
    if not fill.exists():
        sys.exit(f"no fill at {fill}: run bench/search_bench.py --sqlite --reuse --fill-only --chunks {args.chunks}")
    os.environ["DATABASE_URL"] = f"sqlite:///{fill}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
    import django

    django.setup()
    import numpy as np
    from django.db import connection
    from documents_bench import VOCABULARY

    from documents import vectors
    from llmgateway.embeddings import embed

    rng = random.Random(7)  # the questions of bench/search_bench.py
    pool = VOCABULARY[40:1500]
    samples = [" ".join(rng.sample(pool, rng.choice([1, 2, 2, 3]))) for _ in range(args.queries)]
    questions = embed(samples)
    table = vectors._sqlite_table(questions.model)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT workspace_id, count(*) FROM {table} GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
        ws = cursor.fetchone()[0]
        cursor.execute(f"SELECT chunk_id, embedding FROM {table} WHERE workspace_id = %s", [ws])
        rows = cursor.fetchall()
    X = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), -1)
    Q = questions.vectors.astype(np.float32)
    mean = X.mean(0)
    print(
        f"{len(X):,} vectors of {X.shape[1]} dimensions; cosine to their mean {float((X @ mean).mean() / np.linalg.norm(mean)):.3f}; "
        f"{len(Q)} questions; load average {os.getloadavg()[0]:.1f}"
    )
    exact = [set(np.argsort(-(X @ q), kind="stable")[:20].tolist()) for q in Q]
    ks = [20, 40, 100, 200, 400, 800]

    def recall(score):  # score(q) -> coarse distances, lower is nearer
        found = dict.fromkeys(ks, 0)
        for q, truth in zip(Q, exact, strict=True):
            coarse = score(q)
            for k in ks:
                candidates = np.argpartition(coarse, k)[:k]
                top = candidates[np.argsort(-(X[candidates] @ q))[:20]]
                found[k] += len(truth & set(top.tolist()))
        return "  ".join(f"k={k}: {found[k] / (20 * len(Q)):.3f}" for k in ks)

    def hamming(codes, code):
        return np.unpackbits(np.bitwise_xor(codes, code), axis=1).sum(1)

    print("recall@20 after exact re-scoring of the k candidates of a coarse pass:")
    int8 = np.clip(np.round(X * 127), -127, 127).astype(np.float32)
    print("  int8[256] ('unit')           ", recall(lambda q: ((int8 - np.round(q * 127)) ** 2).sum(1)))
    signs = np.packbits(X - mean > 0, axis=1)
    print("  bit[256], centred signs      ", recall(lambda q: hamming(signs, np.packbits(q - mean > 0))))
    planes = np.random.default_rng(0).standard_normal((X.shape[1], 1024)).astype(np.float32)
    hashed = np.packbits((X - mean) @ planes > 0, axis=1)
    print("  bit[1024], centred hyperplanes", recall(lambda q: hamming(hashed, np.packbits((q - mean) @ planes > 0))))
    _, _, axes = np.linalg.svd(X[:20_000] - mean, full_matrices=False)
    for dims in (64, 96):
        basis = axes[:dims].T
        projected = (X - mean) @ basis
        print(
            f"  float[{dims}], principal axes   ",
            recall(lambda q, b=basis, p=projected: ((p - (q - mean) @ b) ** 2).sum(1)),
        )

    print("processor time of sqlite-vec's vec0 k-nearest scan (median over the questions):")
    scratch = FILL_DIR / f"prefilter-{args.chunks}.sqlite3"
    from corporate.backends.sqlite3.base import base, load_sqlite_vec

    db = base.Database.connect(str(scratch))
    problem = load_sqlite_vec(db)
    if problem:
        sys.exit(problem)
    db.execute(f"PRAGMA mmap_size = {vectors.SQLITE_MMAP_BYTES}")
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'pf_float'").fetchone():
        ids = [row[0] for row in rows]
        for name, kind, blobs, wrap in (
            ("pf_float", "float[256]", [x.tobytes() for x in X], "?"),
            ("pf_int8", "int8[256]", [x.astype(np.int8).tobytes() for x in int8], "vec_int8(?)"),
            ("pf_bit", "bit[256]", [s.tobytes() for s in signs], "vec_bit(?)"),
        ):
            db.execute(
                f"CREATE VIRTUAL TABLE {name} USING vec0(chunk_id integer primary key, "
                f"workspace_id integer partition key, embedding {kind})"
            )
            db.executemany(f"INSERT INTO {name} VALUES (?, 1, {wrap})", list(zip(ids, blobs, strict=True)))
        db.commit()

    def cost(name, wrap, encode, k):
        sql = f"SELECT chunk_id FROM {name} WHERE embedding MATCH {wrap} AND k = ? AND workspace_id = 1"
        db.execute(sql, [encode(Q[0]), k]).fetchall()
        used = []
        for q in Q[:30]:
            started = time.process_time()
            db.execute(sql, [encode(q), k]).fetchall()
            used.append((time.process_time() - started) * 1000)
        return f"k={k}: {sorted(used)[len(used) // 2]:.1f} ms"

    print("  float[256] (the exact scan)   ", cost("pf_float", "?", lambda q: q.tobytes(), 20))
    for name, wrap, encode in (
        ("pf_int8", "vec_int8(?)", lambda q: np.round(q * 127).astype(np.int8).tobytes()),
        ("pf_bit", "vec_bit(?)", lambda q: np.packbits(q - mean > 0).tobytes()),
    ):
        print(f"  {name[3:]:<29}", "  ".join(cost(name, wrap, encode, k) for k in (20, 100, 200, 400)))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
