"""A document storage that runs out of room (or fails) while a file is written, and a database that fails
right after: a clear refusal (507, or 503 with Retry-After) on the page, the API and `manage.py ingest`,
one warning in the log, and no file left behind that no document points at.

Filling a real small filesystem needs a mount (root); `FillingStorage` writes to disk like
FileSystemStorage until its room is used up, then fails the write with ENOSPC, as a full disk does,
leaving the part it wrote.
"""

import errno
import io
import logging
import os

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import OperationalError

from documents.models import Document

pytestmark = pytest.mark.django_db

UPLOAD = "/documents/acme/upload/"
API_UPLOAD = "/api/documents/?workspace=acme"


class FillingStorage(FileSystemStorage):
    """A filesystem storage with `room` bytes left in all: a write past it fails with `error` (ENOSPC)."""

    def __init__(self, location, room, error=errno.ENOSPC):
        super().__init__(location=location)
        self.room = room
        self.error = error

    def _save(self, name, content):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "xb") as handle:
            for chunk in content.chunks():
                handle.write(chunk[: self.room])
                if len(chunk) > self.room:
                    self.room = 0
                    handle.flush()
                    raise OSError(self.error, os.strerror(self.error))
                self.room -= len(chunk)
        return name


@pytest.fixture
def storage(tmp_path, monkeypatch, workspace):
    """Install a FillingStorage for the documents' files; set its `room` (default: none left)."""
    filling = FillingStorage(tmp_path / "media", room=0)
    monkeypatch.setattr(Document._meta.get_field("file"), "storage", filling)
    return filling


def stored_files(storage):
    root = storage.location
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names)


def note(name, size=3000):
    words = (f"{name} says the storage test is running. " * (size // 30 + 1)).encode()[:size]
    return SimpleUploadedFile(name, words, "text/plain")


def assert_one_warning(caplog, text):
    """One warning from the documents app naming the cause; no traceback anywhere."""
    ours = [r for r in caplog.records if r.name.startswith("documents")]
    assert [r.levelname for r in ours] == ["WARNING"], [r.getMessage() for r in ours]
    assert text in ours[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_a_full_storage_on_the_page_is_a_507_with_the_reason_and_no_partial_file(client_for, member, storage, caplog):
    storage.room = 1000  # part of the file goes in, then the disk is full
    caplog.set_level(logging.WARNING)
    response = client_for(member).post(UPLOAD, {"files": [note("policy.txt")]})
    assert response.status_code == 507
    page = response.content.decode()
    assert 'class="form-errors"' in page and "Upload files" in page  # the upload page, not the bare error page
    assert "policy.txt" in page and "no room left in the document storage" in page
    assert not Document.objects.exists()
    assert stored_files(storage) == []
    assert_one_warning(caplog, "is full (No space left on device)")


def test_a_batch_keeps_the_files_stored_before_the_storage_filled_up_and_tries_no_more(
    client_for, member, storage, run_tasks, caplog
):
    storage.room = 4000  # the first file fits, the second is cut off, the third is not tried
    caplog.set_level(logging.WARNING)
    with run_tasks():
        response = client_for(member).post(
            UPLOAD, {"files": [note("one.txt"), note("two.txt"), note("three.txt")]}, HTTP_ACCEPT="application/json"
        )
    assert response.status_code == 201  # some went in: the others are listed as errors
    body = response.json()
    assert [d["title"] for d in body["documents"]] == ["one"]
    assert [(e["name"], e["code"]) for e in body["errors"]] == [
        ("two.txt", "storage_full"),
        ("three.txt", "storage_full"),
    ]
    document = Document.objects.get()
    assert document.status == "ready"  # stored, queued and processed
    assert stored_files(storage) == [document.file.name]
    assert_one_warning(caplog, "is full")


def test_a_full_storage_for_the_page_script_is_json(client_for, member, storage):
    response = client_for(member).post(UPLOAD, {"files": [note("policy.txt")]}, HTTP_ACCEPT="application/json")
    assert response.status_code == 507
    body = response.json()
    assert "no room left" in body["detail"]
    assert body["errors"] == [{"name": "policy.txt", "detail": body["detail"], "code": "storage_full"}]
    assert stored_files(storage) == []  # the empty file the failed write made is gone too


def test_a_full_storage_in_the_api_is_a_507_with_a_file_field(api_client_for, member, storage, caplog):
    storage.room = 100
    caplog.set_level(logging.WARNING)
    response = api_client_for(member).post(API_UPLOAD, {"file": [note("policy.txt")]}, format="multipart")
    assert response.status_code == 507
    body = response.json()
    assert "no room left" in body["detail"]
    assert body["file"] == [body["detail"]]
    assert body["errors"][0]["code"] == "storage_full"
    assert not Document.objects.exists() and stored_files(storage) == []
    assert_one_warning(caplog, "is full")


def test_a_failing_storage_is_a_503_with_retry_after(client_for, api_client_for, member, storage, caplog):
    storage.room, storage.error = 100, errno.EIO
    caplog.set_level(logging.WARNING)
    response = api_client_for(member).post(API_UPLOAD, {"file": [note("policy.txt")]}, format="multipart")
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert response.json()["errors"][0]["code"] == "storage_unavailable"
    storage.room = 100
    response = client_for(member).post(UPLOAD, {"files": [note("policy.txt")]})
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert "cannot be written to right now" in response.content.decode()
    assert stored_files(storage) == []
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("where", ["page", "api"])
def test_a_database_failure_after_the_file_was_written_removes_the_file(
    client_for, api_client_for, member, storage, monkeypatch, where
):
    storage.room = 10**6

    def down(*args, **kwargs):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(Document, "save", down)
    if where == "page":
        response = client_for(member).post(UPLOAD, {"files": [note("policy.txt")]})
    else:
        response = api_client_for(member).post(API_UPLOAD, {"file": [note("policy.txt")]}, format="multipart")
    assert response.status_code == 503  # corporate.middleware's answer to a database outage
    assert stored_files(storage) == []


def test_ingest_command_stops_at_a_full_storage_and_exits_1(workspace, storage, tmp_path, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_bytes(note(name).read())
    storage.room = 4000  # a.txt fits
    caplog.set_level(logging.WARNING)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("ingest", "acme", str(folder), "--no-wait", stdout=out, stderr=err)
    assert exit_.value.code == 1
    assert "b.txt: There is no room left in the document storage" in err.getvalue()
    assert "The 1 file(s) after it were not tried." in err.getvalue()
    assert "Queued 1 file(s), refused 2" in out.getvalue()
    assert stored_files(storage) == [Document.objects.get().file.name]
    assert_one_warning(caplog, "is full")
