"""manage.py ingest SLUG PATH... — upload files or folders into a workspace and wait until each is read.

Exits with status 1 when a file was refused, failed or is still processing when the time is up. A file
already in the workspace is no failure when it was read (running the command again over the same folder
succeeds); it is one when it failed, and is waited for when it is still being read.
"""

import sys
import time
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from documents import ingestion
from documents.models import Document, Status
from workspaces.models import Workspace


def collect(paths):
    """Every file under the given files and folders, in a stable order (hidden files skipped)."""
    found = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CommandError(f"{raw}: no such file or folder")
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.parts[len(path.parts) :])
            )
        else:
            found.append(path)
    return found


def bar(done, total, width=30):
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Command(BaseCommand):
    help = (
        "Upload files (or every file in folders) into a workspace; waits until each is ready or failed. "
        "Exits with status 1 if any was refused, failed or is still processing (files already there included)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the workspace's slug")
        parser.add_argument("paths", nargs="+", help="files or folders")
        parser.add_argument("--no-wait", action="store_true", help="queue the files and return at once")
        parser.add_argument("--timeout", type=int, default=3600, help="seconds to wait in all (default 3600)")
        parser.add_argument("--user", help="email of the uploader (default: none)")

    def handle(self, slug, paths, no_wait, timeout, user=None, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug!r}")
        uploader = None
        if user:
            from django.contrib.auth import get_user_model

            uploader = get_user_model().objects.filter(email__iexact=user).first()
            if uploader is None:
                raise CommandError(f"No user with the email {user!r}")
        files = collect(paths)
        if not files:
            raise CommandError("No files found.")
        queued, refused, present = ingest_files(workspace, files, uploader, self.stdout, self.stderr)
        # Uploaded before and still being read: waited for (and counted) with the new ones.
        pending = [document.pk for document in present if document.is_active]
        failed_before = sum(document.status == Status.FAILED for document in present)
        done = len(present) - len(pending)
        already = f", {done} already in the workspace" if done else ""
        if failed_before:
            already += f" ({failed_before} of them failed)"
        if no_wait or not (queued or pending):
            queued_before = f", {len(pending)} queued before" if pending else ""
            self.stdout.write(f"Queued {len(queued)} file(s), refused {refused}{already}{queued_before}.")
            if refused or failed_before:
                sys.exit(1)
            return
        counts = wait(queued + pending, timeout, self.stdout)
        self.stdout.write(
            f"{counts[Status.READY]} ready, {counts[Status.FAILED]} failed, {refused} refused{already}"
            + (f", {counts['waiting']} still processing" if counts["waiting"] else "")
            + "."
        )
        if counts[Status.FAILED] or counts["waiting"] or refused or failed_before:
            sys.exit(1)


def ingest_files(workspace, files, uploader, out, err):
    """(ids of the queued documents, how many files were refused, the documents already in the workspace as other files)."""
    queued, refused, present = [], 0, []
    for number, path in enumerate(files, 1):
        out.write(f"\r{bar(number - 1, len(files))} uploading", ending="")
        try:
            with path.open("rb") as handle:
                document = ingestion.accept_upload(workspace, File(handle, name=path.name), uploader)
        except ingestion.StorageUnavailable as exc:
            # The storage is full or failing: every file after this one would fail the same way.
            left = len(files) - number
            refused += 1 + left
            err.write(f"\n{path}: {exc.message}" + (f" The {left} file(s) after it were not tried." if left else ""))
            break
        except ingestion.UploadRejected as exc:
            err.write(f"\n{path}: {exc.message}")
            if exc.duplicate is None:
                refused += 1
            else:
                present.append(exc.duplicate)
                if exc.duplicate.status == Status.FAILED:
                    err.write(f" It failed: {exc.duplicate.failure_reason}")
            continue
        except OSError as exc:
            refused += 1
            err.write(f"\n{path}: cannot read it ({exc.strerror})")
            continue
        queued.append(document.pk)
    out.write(f"\r{bar(len(files), len(files))} uploaded")
    return queued, refused, present


def wait(ids, timeout, out):
    """Show a progress bar until every document is ready or failed (or the time is up)."""
    deadline = time.monotonic() + timeout
    reported = set()
    while True:
        ingestion.recover_stalled(Document.objects.filter(pk__in=ids))
        rows = list(
            Document.objects.filter(pk__in=ids).only(
                "pk", "title", "status", "failure_reason", "pages_done", "pages_total"
            )
        )
        final = [d for d in rows if d.is_final]
        for document in final:
            if document.pk not in reported and document.status == Status.FAILED:
                out.write(f"\n{document.title}: failed — {document.failure_reason}")
            reported.add(document.pk)
        pages = sum(d.pages_done for d in rows if d.is_active)
        total = sum(d.pages_total for d in rows if d.is_active)
        detail = f" ({pages}/{total} pages of those in progress)" if total else ""
        out.write(f"\r{bar(len(final), len(rows))} processed{detail}   ", ending="")
        out.flush()
        if len(final) == len(rows) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out.write("")
    counts = {Status.READY: 0, Status.FAILED: 0, "waiting": 0}
    for document in rows:
        counts[document.status if document.is_final else "waiting"] += 1
    return counts
