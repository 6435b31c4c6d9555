"""Answer quality on a folder of real documents: retrieval, citations, the fact in the answer, refusals.

    .venv/bin/python bench/answer_quality.py CORPUS_DIR QUESTIONS.tsv [MORE.tsv] [--model NAME] [--passages N] [--quiet]
    .venv/bin/python bench/answer_quality.py documents/demo_files bench/demo_questions.tsv
    .venv/bin/python bench/answer_quality.py ../shared/corpora/basecamp-handbook \
        ../shared/corpora/basecamp-handbook-dev-questions.tsv bench/unanswerable_questions.tsv

QUESTIONS.tsv is tab-separated with a header line: question, file, accepted
phrases separated by `|`. A row with no file and no phrases is a question the
documents cannot answer: the assistant should refuse it.

Every file of the folder (README.md and SOURCE.md aside) is uploaded into a
throw-away workspace through the real path (upload checks, the parser in its
child process, chunking, indexing), an assistant is created over all of them,
and every question is asked through the same code as the chat page
(`assistants.answering.start_turn` and its events). Printed per question and
in total:

- passages: an accepted phrase appears in the retrieved passages (recall at
  the assistant's passage count);
- cited: the expected file is among the answer's citations;
- answer: an accepted phrase appears in the answer;
- refused: the answer cites nothing (for an unanswerable question, the goal);
- latency of the whole turn.

Phrases are compared case-insensitively with runs of white space collapsed.
The database is a throw-away SQLite file under a temp folder (or DATABASE_URL
when set, into a workspace of its own that is deleted afterwards).
"""

import argparse
import csv
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SKIPPED_FILES = {"readme.md", "source.md"}


def setup_django():
    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="answer-quality-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def normalise(text):
    return " ".join((text or "").lower().replace("’", "'").split())


def contains_any(text, phrases):
    text = normalise(text)
    return any(normalise(p) in text for p in phrases)


def read_questions(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for row in reader:
            if not row or not row[0].strip():
                continue
            row = [*row, "", ""][:3]
            phrases = [p.strip() for p in row[2].split("|") if p.strip()]
            rows.append({"question": row[0].strip(), "file": row[1].strip(), "phrases": phrases})
    return rows


def ingest(workspace, user, folder):
    from django.core.files import File

    from documents.ingestion import accept_upload, process

    documents = {}
    started = time.perf_counter()
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file() or path.name.lower() in SKIPPED_FILES or path.suffix == ".py":
            continue
        with open(path, "rb") as handle:
            document = accept_upload(workspace, File(handle, name=path.name), user)
        process(document.pk)
        document.refresh_from_db()
        if document.status != "ready":
            print(f"  {path.name}: {document.status} ({document.failure_reason})")
        documents[path.name] = document
    return documents, time.perf_counter() - started


def ask(assistant, user, question):
    from assistants import answering
    from assistants.models import Conversation

    conversation = Conversation.objects.create(assistant=assistant, user=user)
    started = time.perf_counter()
    turn = answering.start_turn(assistant, conversation, user, question)
    passages = "\n".join(str(m.get("content", "")) for m in turn.request["messages"][-1:])
    for _ in turn.events():
        pass
    elapsed = (time.perf_counter() - started) * 1000
    return turn.answer, passages, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("questions", nargs="+", help="one or more question files")
    parser.add_argument("--model", default="", help="a configured model name (default: the default model)")
    parser.add_argument("--passages", type=int, default=0, help="passages per answer (default: the assistant's)")
    parser.add_argument("--quiet", action="store_true", help="totals only")
    args = parser.parse_args()
    setup_django()

    from django.contrib.auth import get_user_model

    from assistants.models import Assistant
    from workspaces.models import Membership, Workspace

    user, _ = get_user_model().objects.get_or_create(email="answer-quality@example.com")
    slug = f"answer-quality-{os.getpid()}"
    workspace = Workspace.objects.create(slug=slug, name="Answer quality")
    Membership.objects.create(workspace=workspace, user=user, role="owner")
    try:
        documents, seconds = ingest(workspace, user, args.corpus)
        chunks = sum(d.chunk_count for d in documents.values())
        print(f"ingested {len(documents)} files, {chunks} passages in {seconds:.1f} s")
        options = {"workspace": workspace, "name": "Helpdesk", "model_name": args.model}
        if args.passages:
            options["passages"] = args.passages
        assistant = Assistant.objects.create(**options)
        questions = [row for path in args.questions for row in read_questions(path)]
        run(assistant, user, documents, questions, args.quiet)
    finally:
        workspace.delete()


def run(assistant, user, documents, questions, quiet):
    answerable = [q for q in questions if q["phrases"]]
    unanswerable = [q for q in questions if not q["phrases"]]
    found = cited = correct = refused_answerable = refused_unanswerable = 0
    latencies = []
    for q in questions:
        answer, passages, elapsed = ask(assistant, user, q["question"])
        latencies.append(elapsed)
        titles = {c.get("document_id") for c in answer.citations}
        expected = documents.get(q["file"])
        refused = not answer.citations
        if q["phrases"]:
            in_passages = contains_any(passages, q["phrases"])
            in_citations = expected is not None and expected.pk in titles
            in_answer = contains_any(answer.content, q["phrases"])
            found += in_passages
            cited += in_citations
            correct += in_answer
            refused_answerable += refused
            marks = f"{'P' if in_passages else '-'}{'C' if in_citations else '-'}{'A' if in_answer else '-'}"
            marks += "R" if refused else " "
        else:
            refused_unanswerable += refused
            marks = "  R" if refused else "  !"
            marks += " "
        if not quiet:
            shown = re.sub(r"\s+", " ", answer.content)[:150]
            print(f"{marks} {elapsed:6.0f} ms  {q['question'][:70]:<70}  → {shown}")
    n = len(answerable)
    print()
    print("P = answer in the retrieved passages, C = expected document cited, A = fact in the answer, R = refused")
    if n:
        print(f"answerable questions:          {n}")
        print(f"answer in retrieved passages:  {found}/{n} = {100 * found / n:.0f}%")
        print(f"expected document cited:       {cited}/{n} = {100 * cited / n:.0f}%")
        print(f"fact in the answer:            {correct}/{n} = {100 * correct / n:.0f}%")
        print(f"refused although answerable:   {refused_answerable}/{n} = {100 * refused_answerable / n:.0f}%")
    if unanswerable:
        m = len(unanswerable)
        print(f"unanswerable refused:          {refused_unanswerable}/{m} = {100 * refused_unanswerable / m:.0f}%")
    if latencies:
        ordered = sorted(latencies)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(f"turn latency p50 / p95:        {statistics.median(latencies):.0f} / {p95:.0f} ms")


if __name__ == "__main__":
    main()
