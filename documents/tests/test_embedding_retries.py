"""When the embedding model fails, times out or changes: ready for words, pending for meaning, retried, never lost.

The failing models are real local HTTP endpoints (a closed port, the fake
OpenAI-compatible server answering errors or hanging); the retries run through
the task queue, on the database queue where deferring is tested.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from documents import ingestion, vectors
from documents.models import Chunk, Document
from documents.search import search_workspace
from documents.tests.test_vectors import HANDBOOK
from llmgateway.embeddings import embed

pytestmark = pytest.mark.django_db


@pytest.fixture
def needs_vectors():
    state = vectors.state()
    if not state.available:
        pytest.skip(f"no vector search on this database: {state.problem}")


@pytest.fixture
def fake_server():
    from llmgateway.tests.fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.release()
    server.stop()


def use_remote_model(settings, base_url, name="remote-embed", timeout=2):
    from llmgateway import registry
    from llmgateway.models import ModelConfig

    ModelConfig.objects.update_or_create(
        name=name,
        defaults={
            "kind": "embedding",
            "provider": "openai-compatible",
            "base_url": base_url,
            "upstream_model": "embed-1",
            "timeout_seconds": timeout,
        },
    )
    registry.forget_all()
    settings.LLM_EMBEDDING_MODEL = name


def overdue(document):
    """A moment after the document's retry was due and its grace ran out: a lost retry."""
    grace = timedelta(seconds=ingestion.EMBEDDING_RETRY_GRACE + 1)
    return ingestion.next_embedding_retry(Document.objects.get(pk=document.pk)) + grace


def test_an_endpoint_answering_errors_leaves_the_document_ready_and_pending_with_the_reason(
    needs_vectors, ingest, workspace, settings, fake_server, client_for, viewer
):
    use_remote_model(settings, fake_server.base_url)
    fake_server.script(500, 500, 500, 500)
    document = ingest("benefits.md", HANDBOOK)
    assert document.status == "ready" and document.semantic_state == "pending"
    assert "answered with an error (HTTP 500)" in document.embedding_error
    assert search_workspace(workspace, "sabbatical")  # found by its words meanwhile
    assert set(Chunk.objects.filter(document=document).values_list("embedding_model", flat=True)) == {""}
    page = client_for(viewer).get(f"/documents/acme/{document.pk}/").content.decode()
    assert "Search by meaning is pending" in page
    assert "answered with an error (HTTP 500)" in page and "Next try" in page
    # The upload page's script reads the same from the status answer.
    status = client_for(viewer).get(f"/documents/acme/{document.pk}/status/", HTTP_ACCEPT="application/json").json()
    assert status["status"] == "ready" and status["search_by_meaning"] == "pending"
    assert "HTTP 500" in status["embedding_error"]


def test_a_lost_retry_is_queued_again_after_its_back_off_and_the_document_is_embedded(
    needs_vectors, ingest, workspace, settings, django_capture_on_commit_callbacks
):
    from deploy.tests.stack import free_port

    use_remote_model(settings, f"http://127.0.0.1:{free_port()}/v1")
    document = ingest("benefits.md", HANDBOOK)
    assert document.semantic_state == "pending" and "could not be reached" in document.embedding_error
    # Before the back-off (and its grace) has passed, nothing is queued: the deferred retry may still come.
    assert ingestion.catch_up_embeddings(now=timezone.now()) == 0
    # Past it, the retry counts as lost: queued once, however many sweeps look at the same moment.
    when = overdue(document)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert ingestion.catch_up_embeddings(now=when) == 1
        assert ingestion.catch_up_embeddings(now=when) == 0
    assert len(callbacks) == 1
    # It runs while the model is still down: counted, the reason kept, the next try later still.
    with django_capture_on_commit_callbacks(execute=True):
        callbacks[0]()
    after = Document.objects.get(pk=document.pk)
    assert after.embedding_attempts == 1 and after.semantic_state == "pending"
    assert ingestion.next_embedding_retry(after) - after.updated_at == timedelta(seconds=ingestion.retry_delay(2))
    # The model is back (the built-in one): the next overdue sweep embeds it, and its content version grows.
    settings.LLM_EMBEDDING_MODEL = ""
    with django_capture_on_commit_callbacks(execute=True):
        assert ingestion.catch_up_embeddings(now=overdue(after)) == 1
    embedded = Document.objects.get(pk=document.pk)
    assert embedded.semantic_state == "ready" and embedded.embedding_error == ""
    assert embedded.content_version != document.content_version
    question = embed(["long paid break"])
    assert vectors.nearest([workspace.pk], question.vectors[0], question.model)


def test_the_retries_are_deferred_with_a_growing_back_off(needs_vectors, ingest, settings, fake_server, run_tasks):
    from django_tasks import task_backends
    from django_tasks_db.models import DBTaskResult

    use_remote_model(settings, fake_server.base_url)
    fake_server.script(*([503] * 10))
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    task_backends._settings = None  # the queue as configured now
    try:
        started = timezone.now()
        document = ingest("benefits.md", HANDBOOK)
        # The ingestion itself waits in the database queue; run it as the worker would.
        with run_tasks():
            assert ingestion.process(document.pk) == "ready"
        delays = []
        for attempt in range(1, 4):
            retry = DBTaskResult.objects.filter(task_path="documents.tasks.embed_document").order_by("-enqueued_at")
            retry = retry.first()
            assert retry is not None and retry.run_after is not None
            delays.append(round((retry.run_after - started).total_seconds() / 60))
            started = timezone.now()
            retry.delete()
            with run_tasks():
                assert ingestion.embed_document(document.pk) == "pending"
            assert Document.objects.get(pk=document.pk).embedding_attempts == attempt
        assert delays == [1, 5, 30]
    finally:
        settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def test_an_endpoint_that_times_out_is_retried_and_never_mixes_two_models(
    needs_vectors, ingest, workspace, settings, fake_server, run_tasks
):
    local = ingest("equipment.md", b"# Equipment\n\nEach employee receives a laptop, replaced every four years.")
    assert local.embedding_model.startswith("local:")
    use_remote_model(settings, fake_server.base_url, name="slow-embed", timeout=1)
    fake_server.script("hang")
    document = ingest("benefits.md", HANDBOOK)
    fake_server.release()
    assert document.status == "ready" and "did not answer in time" in document.embedding_error
    # The configured model is another one: the document embedded by the built-in model was queued to be
    # embedded again, and was once the endpoint answered.
    after = Document.objects.get(pk=local.pk)
    assert after.embedding_model.startswith("slow-embed:") and after.content_version != local.content_version
    with run_tasks():
        assert ingestion.catch_up_embeddings(now=overdue(document)) == 1
    models = set(Chunk.objects.filter(workspace=workspace).values_list("embedding_model", flat=True))
    assert len(models) == 1 and next(iter(models)).startswith("slow-embed:")
    assert not Document.objects.embedding_pending().exists()


def test_a_model_whose_dimension_changes_forces_a_re_embed(
    needs_vectors, ingest, workspace, settings, fake_server, run_tasks
):
    use_remote_model(settings, fake_server.base_url)
    first = ingest("benefits.md", HANDBOOK)
    assert first.embedding_model.endswith("-8") and first.semantic_state == "ready"
    # The same model name now answers 16 numbers per text (a new version behind the same address).
    fake_server.embedding_dims = 16
    second = ingest("equipment.md", b"# Equipment\n\nEach employee receives a laptop, replaced every four years.")
    assert second.embedding_model.endswith("-16")
    first = Document.objects.get(pk=first.pk)
    # Seen on its first use: the other document was re-embedded at once (the queue runs tasks here).
    assert first.embedding_model == second.embedding_model and first.semantic_state == "ready"
    assert first.version == 2
    assert set(Chunk.objects.filter(workspace=workspace).values_list("embedding_model", flat=True)) == {
        second.embedding_model
    }
    question = embed(["sabbatical"])
    assert question.dims == 16
    assert {row[1] for row in vectors.nearest([workspace.pk], question.vectors[0], question.model)} >= {first.pk}


def test_re_chunking_changes_the_content_version(ingest, member, settings, run_tasks):
    document = ingest("benefits.md", HANDBOOK)
    settings.DOCUMENTS_CHUNK_SIZE = 60
    with run_tasks():
        assert ingestion.reprocess(document)
    after = Document.objects.get(pk=document.pk)
    assert after.chunk_count > document.chunk_count
    assert after.content_version != document.content_version


def test_document_status_queues_overdue_retries(needs_vectors, ingest, settings, run_tasks, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    from deploy.tests.stack import free_port

    use_remote_model(settings, f"http://127.0.0.1:{free_port()}/v1")
    document = ingest("benefits.md", HANDBOOK)
    later = overdue(document)
    monkeypatch.setattr(ingestion.timezone, "now", lambda: later)
    out = StringIO()
    with run_tasks():
        call_command("document_status", stdout=out)
    assert "Queued 1 overdue embedding retry" in out.getvalue()
    assert Document.objects.get(pk=document.pk).embedding_attempts == 1


def test_a_model_that_gives_the_built_in_vectors_is_no_change(needs_vectors, ingest, settings):
    from llmgateway import registry
    from llmgateway.models import ModelConfig

    document = ingest("benefits.md", HANDBOOK)
    ModelConfig.objects.create(name="house-embed", kind="embedding", provider="offline")
    registry.forget_all()
    settings.LLM_EMBEDDING_MODEL = "house-embed"  # the offline provider embeds with the built-in model
    assert ingestion.reembed_other_models() == 0
    settings.LLM_EMBEDDING_MODEL = "missing-model"  # not configured: nothing to compare with, nothing marked
    assert ingestion.reembed_other_models() == 0
    assert Document.objects.get(pk=document.pk).semantic_state == "ready"


def test_opening_a_pending_document_whose_retry_was_lost_queues_it(
    needs_vectors, ingest, settings, client_for, viewer, run_tasks
):
    from deploy.tests.stack import free_port

    use_remote_model(settings, f"http://127.0.0.1:{free_port()}/v1")
    document = ingest("benefits.md", HANDBOOK)
    assert document.semantic_state == "pending"
    settings.LLM_EMBEDDING_MODEL = ""  # the model is back
    # Its retry is not due yet: the page only says when it comes.
    page = client_for(viewer).get(f"/documents/acme/{document.pk}/").content.decode()
    assert "Search by meaning is pending" in page and "Next try in" in page
    # Hours later, the retry never ran (its worker died): opening the page queues it again.
    Document.objects.filter(pk=document.pk).update(updated_at=timezone.now() - timedelta(hours=3))
    with run_tasks():
        page = client_for(viewer).get(f"/documents/acme/{document.pk}/").content.decode()
        assert "Search by meaning is pending" in page  # queued; it runs after the page (on commit)
    assert Document.objects.get(pk=document.pk).semantic_state == "ready"
    assert (
        "Search by meaning is pending" not in client_for(viewer).get(f"/documents/acme/{document.pk}/").content.decode()
    )


def test_a_queued_embedding_is_not_queued_again_while_the_queue_is_behind(
    needs_vectors, ingest, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from types import SimpleNamespace

    from deploy.tests.stack import free_port
    from documents import tasks

    use_remote_model(settings, f"http://127.0.0.1:{free_port()}/v1")
    document = ingest("benefits.md", HANDBOOK)
    queued = []
    monkeypatch.setattr(tasks, "embed_document", SimpleNamespace(enqueue=queued.append))  # a queue kept busy
    when = overdue(document)
    with django_capture_on_commit_callbacks(execute=True):
        assert ingestion.catch_up_embeddings(now=when) == 1
    # The job waits in the queue: later sweeps, past the back-off and its grace again, leave it there.
    for minutes in (5, 10, 25):
        with django_capture_on_commit_callbacks(execute=True):
            assert ingestion.catch_up_embeddings(now=when + timedelta(minutes=minutes)) == 0
    assert queued == [document.pk]
    # Not started after the queue's grace: taken as lost, queued again.
    later = when + timedelta(seconds=ingestion.EMBEDDING_QUEUED_GRACE + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert ingestion.catch_up_embeddings(now=later) == 1
    assert queued == [document.pk, document.pk]
    # A job that starts clears the mark: its failure is retried after the back-off alone.
    monkeypatch.undo()
    ingestion.embed_document(document.pk)
    assert ingestion._queued_at(document.pk) is None
