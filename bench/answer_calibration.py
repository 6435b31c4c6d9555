"""Calibrating the offline answerer: record each question's request once, then replay the answerer on it.

    .venv/bin/python bench/answer_calibration.py record CORPUS_DIR OUT.json QUESTIONS.tsv [MORE.tsv ...]
    .venv/bin/python bench/answer_calibration.py replay OUT.json [MORE.json ...]

`record` ingests the folder through the real path (as bench/answer_quality.py does), builds the
chat page's request for every question (retrieval, passages, prompt) and stores the messages with
the passage numbers' files. `replay` runs the offline answerer on the stored requests in this
process and prints, per set and in total, what answer_quality.py prints (document cited, fact in
the answer, refusals) - in seconds rather than minutes, so thresholds and weights can be compared
side by side on every set at once. `--judge static` replays without the contextual model;
`sweep` prints, for weights and thresholds of the contextual judge, how many questions of the
files are answered or refused as they should be.
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

_CITED = re.compile(r"\[(\d+)\]")


def record(corpus, out, question_files):
    import answer_quality as aq

    aq.setup_django()
    import os

    from django.contrib.auth import get_user_model

    from assistants import answering
    from assistants.models import Assistant, Conversation
    from workspaces.models import Membership, Workspace

    user, _ = get_user_model().objects.get_or_create(email="answer-calibration@example.com")
    workspace = Workspace.objects.create(slug=f"answer-calibration-{os.getpid()}", name="Answer calibration")
    Membership.objects.create(workspace=workspace, user=user, role="owner")
    try:
        documents, _ = aq.ingest(workspace, user, corpus)
        by_pk = {d.pk: name for name, d in documents.items()}
        assistant = Assistant.objects.create(workspace=workspace, name="Helpdesk")
        rows = []
        for path in question_files:
            for q in aq.read_questions(path):
                conversation = Conversation.objects.create(assistant=assistant, user=user)
                turn = answering.start_turn(assistant, conversation, user, q["question"])
                files = {str(c["n"]): by_pk.get(c["document_id"], "") for c in turn.citations}
                rows.append({**q, "set": Path(path).stem, "messages": turn.request["messages"], "files": files})
        Path(out).write_text(json.dumps(rows))
        print(f"{len(rows)} questions recorded in {out}")
    finally:
        workspace.delete()


def evaluate(rows, answer_fn):
    """Per set: counts of cited, fact, refused (answerable) and refused (unanswerable); with the answers."""
    import answer_quality as aq

    sets = {}
    for row in rows:
        text = answer_fn(row["messages"])
        numbers = set(_CITED.findall(text))
        refused = not numbers
        s = sets.setdefault(row["set"], {"n": 0, "cited": 0, "fact": 0, "refused": 0, "m": 0, "right": 0, "rows": []})
        if row["phrases"]:
            s["n"] += 1
            s["cited"] += any(row["files"].get(n) == row["file"] for n in numbers)
            s["fact"] += aq.contains_any(text, row["phrases"])
            s["refused"] += refused
        else:
            s["m"] += 1
            s["right"] += refused
        s["rows"].append((row, text))
    return sets


def report(sets, verbose=False):
    total = {"n": 0, "cited": 0, "fact": 0, "refused": 0, "m": 0, "right": 0}
    for name, s in sets.items():
        for key in total:
            total[key] += s[key]
        print(_line(name, s))
        if verbose:
            for row, text in s["rows"]:
                print(
                    f"    {'A' if row['phrases'] else 'U'} {row['question'][:60]:<60} → {' '.join(text.split())[:90]}"
                )
    print(_line("all", total))


def _line(name, s):
    n, m = max(s["n"], 1), max(s["m"], 1)
    return (
        f"{name:<32} cited {s['cited']:>3}/{s['n']:<3} {100 * s['cited'] / n:3.0f}%  "
        f"fact {s['fact']:>3}/{s['n']:<3} {100 * s['fact'] / n:3.0f}%  "
        f"refused(ans) {s['refused']:>2}  unanswerable refused {s['right']:>2}/{s['m']:<2} {100 * s['right'] / m:3.0f}%"
    )


def replay(files, judge, verbose):
    from llmgateway.providers import offline

    rows = [row for path in files for row in json.loads(Path(path).read_text())]
    if judge == "static":
        offline.CONTEXTUAL = False
    started = time.perf_counter()
    sets = evaluate(rows, offline.answer)
    print(f"{len(rows)} questions replayed in {time.perf_counter() - started:.1f} s")
    report(sets, verbose)


def sweep(files, include):
    """Refusals only: for each weight of the contextual judge and each threshold on the combined score
    (besides offline.ANSWER_THRESHOLD on the static one), answerable questions answered plus
    unanswerable ones refused, best first."""
    from llmgateway.providers import offline

    rows = [row for path in files for row in json.loads(Path(path).read_text())]
    rows = [row for row in rows if not include or row["set"] in include]
    features = []
    started = time.perf_counter()
    for row in rows:
        question, passages = offline.split_question_and_passages(row["messages"])
        scored, _ = offline.rank(question, passages)
        headed, alone = offline.contextual_scores(question, scored, passages) or ([], [])
        cosines = [max(a, b) for a, b in zip(headed, alone, strict=True)]
        features.append((bool(row["phrases"]), [item.score for item in scored[: len(cosines)]], cosines))
    print(f"{len(rows)} questions scored in {time.perf_counter() - started:.1f} s")
    answerable = sum(1 for found, _, _ in features if found)
    results = []
    for weight in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0):
        combined = [
            (
                found,
                scores[0] if scores else 0.0,
                max((s + weight * c for s, c in zip(scores, cosines, strict=True)), default=0.0),
            )
            for found, scores, cosines in features
        ]
        for threshold in sorted({round(value, 2) for _, _, value in combined}):
            answers = [static >= offline.ANSWER_THRESHOLD and value >= threshold for _, static, value in combined]
            ans = sum(1 for (found, _, _), a in zip(combined, answers, strict=True) if found and a)
            ref = sum(1 for (found, _, _), a in zip(combined, answers, strict=True) if not found and not a)
            results.append((ans + ref, ans, ref, weight, threshold))
    results.sort(reverse=True)
    print(f"answerable {answerable}, unanswerable {len(rows) - answerable}")
    for total, ans, ref, weight, threshold in results[:20]:
        print(f"right {total}  answered {ans}  refused {ref}  W_CONTEXTUAL={weight} CONTEXTUAL_THRESHOLD={threshold}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("corpus")
    rec.add_argument("out")
    rec.add_argument("questions", nargs="+")
    rep = sub.add_parser("replay")
    rep.add_argument("files", nargs="+")
    rep.add_argument("--judge", choices=("contextual", "static"), default="contextual")
    rep.add_argument("--verbose", action="store_true")
    swp = sub.add_parser("sweep")
    swp.add_argument("files", nargs="+")
    swp.add_argument("--sets", default="", help="comma-separated set names (default: all)")
    args = parser.parse_args()
    if args.command == "record":
        record(args.corpus, args.out, args.questions)
    else:
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
        import django

        django.setup()
        if args.command == "sweep":
            sweep(args.files, [name for name in args.sets.split(",") if name])
        else:
            replay(args.files, args.judge, args.verbose)


if __name__ == "__main__":
    main()
