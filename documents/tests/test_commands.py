import io

import pytest
from django.core.management import CommandError, call_command

from documents.models import Document
from documents.tests.conftest import MARKDOWN, pdf_bytes, upload

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_ingest_files_and_folders_waits_for_ready(workspace, tmp_path, member):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "handbook.pdf").write_bytes(pdf_bytes())
    (folder / "sub" / "faq.md").write_text(MARKDOWN)
    (folder / ".hidden.txt").write_text("skip me")
    (folder / "empty.txt").write_bytes(b"")
    single = tmp_path / "notes.txt"
    single.write_text("Single notes file.")
    out, err = io.StringIO(), io.StringIO()
    # A refusal (the empty file) is reported, the others are read, and the exit status says not all went in.
    with pytest.raises(SystemExit) as exited:
        call_command("ingest", "acme", str(folder), str(single), "--user", member.email, stdout=out, stderr=err)
    assert exited.value.code == 1
    assert "3 ready, 0 failed, 1 refused." in out.getvalue()
    assert "empty.txt: The file is empty." in err.getvalue()
    assert "[##############################] 3/3" in out.getvalue()
    assert sorted(Document.objects.values_list("original_name", flat=True)) == ["faq.md", "handbook.pdf", "notes.txt"]
    assert set(Document.objects.values_list("uploaded_by", flat=True)) == {member.pk}
    # Files already in the workspace are no failure: the same folder again, without the empty file, succeeds.
    (folder / "empty.txt").unlink()
    out = io.StringIO()
    call_command("ingest", "acme", str(folder), str(single), stdout=out, stderr=io.StringIO())
    assert "Queued 0 file(s), refused 0, 3 already in the workspace." in out.getvalue()


def test_ingest_no_wait_and_errors(workspace, tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Hello there.")
    out = io.StringIO()
    call_command("ingest", "acme", str(path), "--no-wait", stdout=out)
    assert "Queued 1 file(s), refused 0." in out.getvalue()
    (tmp_path / "empty.txt").write_bytes(b"")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("ingest", "acme", str(tmp_path / "empty.txt"), "--no-wait", stdout=out, stderr=io.StringIO())
    assert exited.value.code == 1
    assert "Queued 0 file(s), refused 1." in out.getvalue()
    with pytest.raises(CommandError, match="No workspace"):
        call_command("ingest", "nope", str(path))
    with pytest.raises(CommandError, match="no such file"):
        call_command("ingest", "acme", str(tmp_path / "missing.pdf"))


def test_document_status_and_reindex(ingest, workspace, other_workspace, outsider, run_tasks):
    ingest("handbook.pdf", pdf_bytes())
    ingest("bad.pdf", b"%PDF-1.4\n garbage \n%%EOF\n")
    ingest("x.txt", b"Globex notes.", ws=other_workspace, user=outsider)
    out = io.StringIO()
    call_command("document_status", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["workspace", "queued", "processing", "ready", "failed"]
    assert lines[1].split() == ["acme", "0", "0", "1", "1"]
    assert lines[3].split() == ["total", "0", "0", "2", "1"]
    out = io.StringIO()
    call_command("document_status", "globex", stdout=out)
    assert len(out.getvalue().splitlines()) == 2

    out = io.StringIO()
    call_command("reindex", "acme", "--dry-run", stdout=out)
    assert "Would queue 2 document(s)" in out.getvalue()
    with run_tasks():
        call_command("reindex", "acme", stdout=out)
    assert "Queued 2 document(s)" in out.getvalue()
    assert Document.objects.get(original_name="handbook.pdf").version == 2
    from django.db import connection

    if connection.vendor == "postgresql":
        # The test's one transaction still holds deferred foreign-key checks on the
        # table, and PostgreSQL refuses DDL then; the command alone has its own transaction.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("reindex", "acme", "--rebuild-index", stdout=out)
    from documents.search import search_workspace

    assert search_workspace(workspace, "vacation")


def test_ingest_again_fails_for_a_file_that_failed_before_and_waits_for_one_still_queued(ingest, workspace, tmp_path):
    from documents.ingestion import accept_upload

    bad = b"%PDF-1.4\n garbage \n%%EOF\n"
    assert ingest("bad.pdf", bad).status == "failed"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bad.pdf").write_bytes(bad)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("ingest", "acme", str(folder), stdout=out, stderr=err)
    assert exited.value.code == 1
    assert "Queued 0 file(s), refused 0, 1 already in the workspace (1 of them failed)." in out.getvalue()
    assert "bad.pdf: This file is already in the workspace" in err.getvalue()
    assert "It failed: " in err.getvalue()
    # Uploaded before and not read yet (no task runs here): waited for as a new upload would be.
    accept_upload(workspace, upload("notes.txt", b"Queued notes."), None)
    (folder / "bad.pdf").unlink()
    (folder / "notes.txt").write_bytes(b"Queued notes.")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("ingest", "acme", str(folder), "--timeout", "0", stdout=out, stderr=io.StringIO())
    assert exited.value.code == 1
    assert "0 ready, 0 failed, 0 refused, 1 still processing." in out.getvalue()
