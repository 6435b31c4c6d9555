"""Documents benchmark: ingestion throughput and full-text search latency.

    .venv/bin/python bench/documents_bench.py                 # PostgreSQL (database documents_bench)
    .venv/bin/python bench/documents_bench.py --sqlite        # the embedded default
    .venv/bin/python bench/documents_bench.py --chunks 100000 --queries 300

Ingestion: a generated 500-page PDF and a 10 MB text file go through the
real path (upload checks, storage, the parser in its limited child
process, chunking, embedding, indexing); figures are pages (or MB) per
second, and for the PDF the processor time (this process plus the parser's
child: steadier than wall time on a busy machine), each step's share, and
the text reading of pypdf against PDFium's in alternating rounds.

    .venv/bin/python bench/documents_bench.py --sqlite --skip-search --skip-text --rounds 3

Search: --chunks passages of generated prose (Zipf-distributed vocabulary)
in one workspace, plus a fifth as many in another, then --queries searches
of one to three words through `documents.search.search_workspace` (ranked
passages, highlighted snippets and their documents: what assistants call).
Prints p50/p95 and the query plan, which must use the GIN index.
The database is the benchmark's own (created if missing), never the app's.
"""

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def configure(args):
    var = Path(tempfile.mkdtemp(prefix="documents-bench-"))
    os.environ["VAR_DIR"] = str(var)
    os.environ["MEDIA_ROOT"] = str(var / "media")
    if args.sqlite:
        os.environ["DATABASE_URL"] = f"sqlite:///{var / 'bench.sqlite3'}"
    else:
        import psycopg2

        url = args.database_url
        admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [url.rsplit("/", 1)[1]])
            if not cursor.fetchone():
                cursor.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
        admin.close()
        os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def workspace(slug):
    from workspaces.models import Workspace

    return Workspace.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]


class Phases:
    """Wall and processor seconds of each step of `ingestion.process`, and the parser child's processor time."""

    STEPS = ("sandbox_extract", "chunk_units", "embed_pieces", "save_passages")

    def __init__(self):
        from documents import ingestion

        self.seconds = {}
        for step in self.STEPS:
            setattr(ingestion, step, self._timed(step, getattr(ingestion, step)))

    def _timed(self, step, function):
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            result = function(*args, **kwargs)
            used = self.seconds.setdefault(step, [0.0, 0.0, 0.0])
            used[0] += time.perf_counter() - wall
            used[1] += time.process_time() - cpu
            if step == "sandbox_extract":
                used[2] += result.cpu_seconds  # the child's own processor time
            return result

        return timed

    def take(self):
        seconds, self.seconds = self.seconds, {}
        return seconds


def ingest(ws, name, content, phases=None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from documents import ingestion
    from documents.models import Document

    Document.objects.filter(workspace=ws).delete()
    started = time.perf_counter()
    document = ingestion.accept_upload(ws, SimpleUploadedFile(name, content))
    stored = time.perf_counter()
    Document.objects.filter(pk=document.pk).update(status="queued")
    if phases is not None:
        phases.take()
    cpu = time.process_time()
    ingestion.process(document.pk)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    document.refresh_from_db()
    assert document.status == "ready", document.failure_reason
    document.cpu_seconds = cpu + (phases.seconds.get("sandbox_extract", [0, 0, 0])[2] if phases else 0)
    document.phases = phases.take() if phases else {}
    return document, stored - started, done - stored


def generated_pdf(pages=500):
    from documents.pdfmake import make_pdf, wrap

    rng = random.Random(4)
    content = []
    for number in range(pages):
        text = " ".join(rng.choice(VOCABULARY) for _ in range(420))
        content.append([f"# Section {number + 1}", "", *wrap(text, 95)[:44]])
    return make_pdf(content, title=f"Generated {pages} pages")


def compare_readers(pdf, rounds):
    """Processor seconds to read every page's text: pypdf (the former reader) and PDFium, alternating."""
    try:
        import pypdf
    except ImportError:
        print("Readers: pypdf is not installed (requirements-dev.txt); no comparison")
        return
    import pypdfium2

    from documents.parsers.pdf import page_text

    def with_pypdf():
        reader = pypdf.PdfReader(io.BytesIO(pdf), strict=False)
        return sum(len(page.extract_text() or "") for page in reader.pages)

    def with_pdfium():
        document = pypdfium2.PdfDocument(pdf)
        try:
            return sum(len(page_text(document, index)) for index in range(len(document)))
        finally:
            document.close()

    used = {"pypdf": [], "PDFium": []}
    for _ in range(rounds):
        for label, read in (("pypdf", with_pypdf), ("PDFium", with_pdfium)):
            cpu = time.process_time()
            read()
            used[label].append(time.process_time() - cpu)
    old, new = statistics.median(used["pypdf"]), statistics.median(used["PDFium"])
    print(
        f"Reading the PDF's text in one process, median of {rounds} alternating rounds (processor time): "
        f"pypdf {old:.2f} s, PDFium {new:.2f} s ({old / new:.1f}x)"
    )


def bench_ingestion(rounds=3, text=True):
    from documents import vectors

    ws = workspace("bench-ingest")
    pdf = generated_pdf()
    state = vectors.state()
    print(f"search by meaning: {state.backend or 'off (' + state.problem + ')'}")
    phases = Phases()
    for round_ in range(1, rounds + 1):
        document, upload_s, process_s = ingest(ws, f"generated-{round_}.pdf", pdf, phases)
        label = "first, cold process" if round_ == 1 else f"round {round_}"
        print(
            f"PDF ({label}): {len(pdf) / 1e6:.1f} MB, {document.page_count} pages, {document.chunk_count} passages, "
            f"embedded with {document.embedding_model or 'nothing'}"
        )
        print(f"  upload checks + storage {upload_s * 1000:.0f} ms; read + chunk + embed + index {process_s:.2f} s")
        print(
            f"  => {document.page_count / process_s:.0f} pages/s; processor time {document.cpu_seconds:.2f} s "
            f"(=> {document.page_count / document.cpu_seconds:.0f} pages per processor second)"
        )
        steps = document.phases
        print(
            "  steps (wall / processor s): "
            + "; ".join(
                f"{step} {wall:.2f} / {cpu:.2f}" + (f" + child {child:.2f}" if child else "")
                for step, (wall, cpu, child) in steps.items()
            )
        )
    compare_readers(pdf, rounds)
    if not text:
        return

    rng = random.Random(4)
    words = VOCABULARY
    paragraphs = []
    size = 0
    while size < 10 * 1024 * 1024:
        paragraph = ". ".join(" ".join(rng.choice(words) for _ in range(14)).capitalize() for _ in range(6)) + "."
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    text = "\n\n".join(paragraphs).encode()
    document, upload_s, process_s = ingest(ws, "generated.txt", text)
    print(f"Text: {len(text) / 1e6:.1f} MB, {document.char_count:,} characters, {document.chunk_count} passages")
    print(f"  upload checks + storage {upload_s * 1000:.0f} ms; read + chunk + embed + index {process_s:.2f} s")
    print(f"  => {len(text) / 1e6 / process_s:.2f} MB/s")


def fill(ws, chunks, rng, label):
    from django.db import transaction

    from documents.models import Chunk, Document

    have = Chunk.objects.filter(workspace=ws).count()
    if have >= chunks:
        print(f"{label}: {have:,} passages already there")
        return
    Document.objects.filter(workspace=ws).delete()
    per_document = 1000
    started = time.perf_counter()
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    for d in range((chunks + per_document - 1) // per_document):
        with transaction.atomic():
            document = Document.objects.create(
                workspace=ws, title=f"Report {d}", original_name=f"report-{d}.txt", file=f"documents/bench/{d}.txt",
                kind="text", content_type="text/plain", size=1, sha256=f"{ws.pk}-{d}", status="ready",
            )  # fmt: skip
            rows = []
            for position in range(min(per_document, chunks - d * per_document)):
                text = " ".join(rng.choices(VOCABULARY, weights, k=150))
                rows.append(
                    Chunk(
                        document=document,
                        workspace=ws,
                        position=position,
                        text=text,
                        page=position // 3 + 1,
                        start=0,
                        end=len(text),
                        token_estimate=len(text) // 4,
                    )  # fmt: skip
                )
            Chunk.objects.bulk_create(rows, batch_size=1000)
    print(f"{label}: inserted {chunks:,} passages in {time.perf_counter() - started:.0f} s")


def bench_search(chunks, queries):
    from django.db import connection

    from documents.search import POSTGRES_QUERY, search_workspace

    rng = random.Random(7)
    ws = workspace("bench-search")
    other = workspace("bench-other")
    fill(ws, chunks, rng, "search workspace")
    fill(other, chunks // 5, rng, "other workspace")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE documents_chunk" if connection.vendor == "postgresql" else "ANALYZE")

    # Words people search for: not the commonest (those are in nearly every passage).
    pool = VOCABULARY[40:1500]
    samples = [" ".join(rng.sample(pool, rng.choice([1, 2, 2, 3]))) for _ in range(queries)]
    for query in samples[:10]:
        search_workspace(ws, query)  # warm up
    timings, hits = [], 0
    for query in samples:
        started = time.perf_counter()
        results = search_workspace(ws, query, limit=10)
        timings.append((time.perf_counter() - started) * 1000)
        hits += bool(results)
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(
        f"Search over {chunks:,} passages ({connection.vendor}): {queries} queries, {hits} with results; "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {timings[-1]:.1f} ms"
    )
    common = [VOCABULARY[0], f"{VOCABULARY[1]} {VOCABULARY[2]}"]
    for query in common:
        started = time.perf_counter()
        search_workspace(ws, query)
        print(f"  very common words {query!r}: {(time.perf_counter() - started) * 1000:.1f} ms")
    if connection.vendor == "postgresql":
        from documents.search import HEADLINE_OPTIONS

        sql = POSTGRES_QUERY.format(workspaces="c.workspace_id = %s::bigint", documents="")
        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, [samples[0], HEADLINE_OPTIONS, samples[0], ws.pk, 10]
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"Query plan for {samples[0]!r}:")
        print("\n".join("  " + line for line in plan.splitlines()))
        assert "documents_chunk_ws_search" in plan or "documents_chunk_search" in plan, "no GIN index used"
        print("GIN index used: yes")
    return p50, p95


def make_vocabulary(n=6000, seed=11):
    rng = random.Random(seed)
    base = [
        "water",
        "leak",
        "sensor",
        "pipe",
        "pressure",
        "valve",
        "repair",
        "budget",
        "travel",
        "hotel",
        "meal",
        "invoice",
        "policy",
        "vacation",
        "laptop",
        "network",
        "report",
        "customer",
        "contract",
        "meeting",
        "project",
        "deadline",
        "safety",
        "training",
        "expense",
        "approval",
        "manager",
        "office",
        "printer",
        "account",
        "password",
        "security",
        "backup",
        "server",
        "release",
        "quarter",
        "forecast",
        "revenue",
        "analysis",
    ]
    syllables = [
        "ka",
        "lo",
        "mi",
        "ra",
        "te",
        "su",
        "no",
        "vi",
        "pe",
        "da",
        "ri",
        "fo",
        "gu",
        "be",
        "zan",
        "tor",
        "mel",
    ]
    words = list(dict.fromkeys(base))
    while len(words) < n:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in words:
            words.append(word)
    rng.shuffle(words)
    return words


VOCABULARY = make_vocabulary()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="benchmark the embedded SQLite/FTS5 setup")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/documents_bench")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-ingestion", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-text", action="store_true", help="only the PDF in the ingestion part")
    parser.add_argument("--rounds", type=int, default=3, help="times the PDF is ingested (the first in a cold process)")
    args = parser.parse_args()
    configure(args)
    from django.db import connection

    print(f"database: {connection.vendor}; CPU cores: {os.cpu_count()}")
    if not args.skip_ingestion:
        bench_ingestion(args.rounds, text=not args.skip_text)
    if not args.skip_search:
        bench_search(args.chunks, args.queries)


if __name__ == "__main__":
    main()
