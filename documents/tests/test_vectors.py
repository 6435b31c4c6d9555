"""Search by meaning: embeddings stored with the passages, hybrid search, the lexical fallback and its warnings.

On SQLite these run against sqlite-vec for real; on a PostgreSQL without
pgvector (the machine's PostgreSQL 15) against the fallback. The pgvector
path itself is tested on a PostgreSQL 18 with pgvector in test_pgvector.py.
"""

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.urls import reverse

from documents import ingestion, vectors
from documents.models import Chunk, Document
from documents.search import search_workspace
from documents.tests.conftest import remake_vec_table
from llmgateway.embeddings import embed

pytestmark = pytest.mark.django_db

HANDBOOK = b"""# Benefits

## Sabbatical

Every three years of service you may take a sabbatical of up to six weeks, fully paid.

## Equipment

Each employee receives a laptop, which is replaced every four years.
"""
# Shares no word with the sabbatical passage but means it.
PARAPHRASE = "long paid break from work"


def needs_vectors():
    state = vectors.state()
    if not state.available:
        pytest.skip(f"no vector search on this database: {state.problem}")


def test_passages_are_embedded_and_found_by_meaning(ingest, workspace):
    needs_vectors()
    document = ingest("benefits.md", HANDBOOK)
    model = embed(["x"]).model
    assert document.status == "ready" and document.embedding_model == model and not document.embedding_error
    assert set(Chunk.objects.filter(document=document).values_list("embedding_model", flat=True)) == {model}

    found = search_workspace(workspace, "sabbatical", limit=3)[0]
    assert document.title == "Benefits" and found.section == "Benefits › Sabbatical"
    assert found.location == "Sabbatical"  # citations show the title beside it
    question = embed(["How often can I take a sabbatical?"])
    hybrid = search_workspace(workspace, "often or sabbatical", limit=1, vector=question.vectors[0], vector_model=model)
    assert hybrid[0].section == "Benefits › Sabbatical"
    # Vectors of another model (or of another dimension) are never compared with these.
    assert vectors.nearest([workspace.pk], question.vectors[0], "other-model-256") == []


def test_nearest_respects_workspace_and_documents(ingest, workspace, other_workspace, outsider):
    needs_vectors()
    mine = ingest("benefits.md", HANDBOOK)
    theirs = ingest("theirs.md", HANDBOOK + b"\nOther copy.", ws=other_workspace, user=outsider)
    question = embed(["sabbatical"])
    rows = vectors.nearest([workspace.pk], question.vectors[0], question.model, k=10)
    assert rows and {row[1] for row in rows} == {mine.pk}
    assert vectors.nearest([workspace.pk], question.vectors[0], question.model, document_ids=[theirs.pk]) == []


def test_the_dropped_passage_loses_its_vector(ingest, workspace):
    needs_vectors()
    document = ingest("benefits.md", HANDBOOK)
    question = embed(["sabbatical"])
    ingestion.delete_document(Document.objects.get(pk=document.pk))
    assert vectors.nearest([workspace.pk], question.vectors[0], question.model) == []


@pytest.fixture
def dead_embedding_model(db, settings):
    """An OpenAI-compatible embedding model on a port where nothing listens."""
    from deploy.tests.stack import free_port
    from llmgateway import registry
    from llmgateway.models import ModelConfig

    ModelConfig.objects.create(
        name="remote-embed",
        kind="embedding",
        provider="openai-compatible",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        upstream_model="embed-1",
        timeout_seconds=2,
    )
    registry.forget_all()
    settings.LLM_EMBEDDING_MODEL = "remote-embed"
    return settings


def test_a_failing_embedding_model_leaves_the_document_searchable_and_pending(ingest, workspace, dead_embedding_model):
    needs_vectors()
    document = ingest("benefits.md", HANDBOOK)
    assert document.status == "ready" and document.chunk_count == 2
    assert document.semantic_state == "pending"
    assert "could not be reached" in document.embedding_error
    assert search_workspace(workspace, "sabbatical")  # lexical search works meanwhile
    # Still failing: the attempt is counted, the reason kept.
    assert ingestion.embed_document(document.pk) == "pending"
    assert Document.objects.get(pk=document.pk).embedding_attempts == 1
    # The model is back (here: the local one): the passages are embedded, the content version grows.
    dead_embedding_model.LLM_EMBEDDING_MODEL = ""
    assert ingestion.embed_document(document.pk) == "embedded"
    document_after = Document.objects.get(pk=document.pk)
    assert document_after.semantic_state == "ready" and document_after.embedding_error == ""
    assert document_after.content_version != document.content_version


def test_a_remote_embedding_model_with_other_dimensions_is_never_mixed(ingest, workspace, settings):
    needs_vectors()
    from llmgateway import registry
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    try:
        document = ingest("benefits.md", HANDBOOK)
        local_model = document.embedding_model
        ModelConfig.objects.create(
            name="remote-embed",
            kind="embedding",
            provider="openai-compatible",
            base_url=server.base_url,
            upstream_model="e",
        )
        registry.forget_all()
        settings.LLM_EMBEDDING_MODEL = "remote-embed"
        question = embed(["sabbatical"])
        assert question.dims == 8 and question.model != local_model
        # Until re-embedded, the new model finds nothing by meaning (the words still match).
        assert vectors.nearest([workspace.pk], question.vectors[0], question.model) == []
        call_command("reindex", workspace.slug, "--embeddings", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert Document.objects.get(pk=document.pk).embedding_model == question.model
        assert vectors.nearest([workspace.pk], question.vectors[0], question.model)
    finally:
        server.stop()


def test_health_says_whether_search_is_hybrid(client):
    body = client.get(reverse("health")).json()
    state = vectors.state()
    if state.available:
        assert body["search"]["mode"] == "hybrid" and body["search"]["vectors"] == state.backend
    else:
        assert body["search"]["mode"] == "lexical" and "pgvector" in body["search"]["warning"]


@pytest.fixture
def without_vectors():
    """This connection as on a database without vector search (PostgreSQL without pgvector, or no sqlite-vec)."""
    wrapper = connections["default"]  # the connection itself, not django.db.connection's proxy
    wrapper.ensure_connection()
    saved = dict(wrapper.__dict__)
    if wrapper.vendor == "postgresql":
        wrapper._vector_state = vectors.VectorState("", vectors.PG_MISSING)
    else:
        wrapper.vector_problem = "sqlite-vec could not be loaded (test)"
    yield
    for name in ("_vector_state", "vector_problem"):
        wrapper.__dict__.pop(name, None)
        if name in saved:
            wrapper.__dict__[name] = saved[name]


def test_without_vectors_search_is_lexical_and_health_and_admin_say_so(
    without_vectors, ingest, workspace, client, django_user_model
):
    document = ingest("benefits.md", HANDBOOK)
    assert document.status == "ready" and document.embedding_model == "" and document.embedding_error == ""
    assert search_workspace(workspace, "sabbatical")[0].section == "Benefits › Sabbatical"
    body = client.get(reverse("health")).json()
    assert client.get(reverse("health")).status_code == 200
    assert body["search"]["mode"] == "lexical" and body["search"]["warning"].startswith("Search by meaning is off")

    staff = django_user_model.objects.create_user(email="staff@example.com", password="pw-12345678", is_staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    page = client.get("/admin/documents/document/").content.decode()
    assert "Search by meaning is off" in page


def test_reindex_embeddings_refuses_without_vectors(without_vectors, workspace):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="cannot search by meaning"):
        call_command("reindex", workspace.slug, "--embeddings")


def test_hybrid_search_costs_a_fixed_number_of_queries(ingest, workspace, django_assert_num_queries):
    needs_vectors()
    from django.db import connection

    ingest("benefits.md", HANDBOOK)
    question = embed(["How often can I take a sabbatical?"])
    # the nearest passages by meaning (SQLite: the workspace's vectors, then those passages); the
    # ranked passages by words; their documents with workspaces
    with django_assert_num_queries(4 if connection.vendor == "sqlite" else 3):
        results = search_workspace(
            workspace, "often or sabbatical or laptop", limit=2, vector=question.vectors[0], vector_model=question.model
        )
        assert [r.document.workspace.slug for r in results] == ["acme", "acme"]


def test_a_passage_about_something_else_is_not_brought_in_by_meaning(ingest, workspace):
    needs_vectors()
    ingest("benefits.md", HANDBOOK)
    question = embed(["Which VPN gateway do I use?"])
    results = search_workspace(workspace, "", limit=5, vector=question.vectors[0], vector_model=question.model)
    assert results == []  # nothing in the handbook is close in meaning; nothing is returned to quote


def test_an_embedding_model_that_times_out_leaves_the_document_ready_and_pending(ingest, workspace, settings):
    needs_vectors()
    from llmgateway import registry
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    try:
        ModelConfig.objects.create(
            name="slow-embed",
            kind="embedding",
            provider="openai-compatible",
            base_url=server.base_url,
            upstream_model="e",
            timeout_seconds=1,
        )
        registry.forget_all()
        settings.LLM_EMBEDDING_MODEL = "slow-embed"
        server.script("hang")
        document = ingest("benefits.md", HANDBOOK)
        server.release()
        assert document.status == "ready" and document.chunk_count == 2
        assert document.semantic_state == "pending"
        assert "did not answer in time" in document.embedding_error
        assert search_workspace(workspace, "sabbatical")  # found by its words meanwhile
        # The endpoint answers again: the retry embeds it with that model, nothing of another model mixed in.
        assert ingestion.embed_document(document.pk) == "embedded"
        after = Document.objects.get(pk=document.pk)
        assert after.semantic_state == "ready" and after.embedding_model.startswith("slow-embed:")
        assert set(Chunk.objects.filter(document=document).values_list("embedding_model", flat=True)) <= {
            after.embedding_model,
            "",
        }
    finally:
        server.stop()


def test_nearest_passages_are_the_exact_nearest_with_their_cosine_distance(ingest, workspace):
    needs_vectors()
    import numpy as np

    document = ingest("benefits.md", HANDBOOK)
    chunks = list(Chunk.objects.filter(document=document).order_by("position"))
    passages = embed([chunk.text for chunk in chunks])
    with transaction.atomic():  # vectors known here, whatever ingestion embeds of a passage
        vectors.write(document.pk, workspace.pk, [chunk.pk for chunk in chunks], passages)
    question = embed(["How often can I take a sabbatical?"])
    similarity = passages.vectors @ question.vectors[0]
    rows = vectors.nearest([workspace.pk], question.vectors[0], question.model, k=len(chunks))
    # The same order as an exact cosine ranking, and each row's distance is 1 - cosine.
    assert [row[0] for row in rows] == [chunks[i].pk for i in np.argsort(-similarity)]
    assert [row[0] for row in rows] == vectors.exact_nearest_ids(
        [workspace.pk], question.vectors[0], question.model, 10
    )
    expected = {chunk.pk: 1.0 - float(s) for chunk, s in zip(chunks, similarity, strict=True)}
    for row in rows:
        assert row[6] == pytest.approx(expected[row[0]], abs=1e-4)


def test_a_vector_table_made_with_the_cosine_metric_still_searches_and_is_rebuilt(ingest, workspace):
    needs_vectors()
    from django.db import connection

    ingest("benefits.md", HANDBOOK)
    question = embed(["How often can I take a sabbatical?"])
    before = vectors.nearest([workspace.pk], question.vectors[0], question.model, k=5)
    table = vectors._sqlite_table(question.model)
    if connection.vendor == "sqlite":  # as tables were made before the Euclidean metric
        remake_vec_table(table, "float[256] distance_metric=cosine")
    for attempt in ("as made", "after the rebuild"):
        after = vectors.nearest([workspace.pk], question.vectors[0], question.model, k=5)
        assert [row[0] for row in after] == [row[0] for row in before], attempt
        assert [row[6] for row in after] == pytest.approx([row[6] for row in before], abs=1e-4), attempt
        vectors.rebuild()  # `reindex --rebuild-index`
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [table])
                assert "cosine" not in cursor.fetchone()[0]


def test_hybrid_search_highlights_what_it_returns_and_ranks_a_bounded_number_of_matches(ingest, workspace, monkeypatch):
    from documents import search

    ingest("benefits.md", HANDBOOK)
    question = embed(["How often can I take a sabbatical?"])
    results = search_workspace(
        workspace, "sabbatical", limit=1, vector=question.vectors[0], vector_model=question.model
    )
    assert "<mark>sabbatical</mark>" in results[0].snippet.lower()
    # Only the rows shown get a snippet: a hybrid search ranks more passages than it returns.
    sql, params = search.lexical_sql([workspace.pk], "every or laptop or sabbatical", None, 10, snippets=1)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    assert len(rows) >= 2 and rows[0][7] and all(row[7] is None for row in rows[1:])
    # A query matching more passages than RANK_CANDIDATES ranks only that many of them.
    monkeypatch.setattr(search, "RANK_CANDIDATES", 1)
    assert len(search_workspace(workspace, "every or laptop or sabbatical", limit=10)) == 1


def test_a_hybrid_search_returns_more_fused_candidates_from_the_same_rankings(ingest, workspace, monkeypatch):
    needs_vectors()
    from documents import search

    ingest("benefits.md", HANDBOOK)
    question = embed(["How often can I take a sabbatical?"])
    depths = []
    nearest = vectors.nearest
    monkeypatch.setattr(vectors, "nearest", lambda *args: depths.append(args[4]) or nearest(*args))
    kwargs = {"vector": question.vectors[0], "vector_model": question.model}
    one = search_workspace(workspace, "often or sabbatical or laptop", limit=1, **kwargs)
    more = search_workspace(workspace, "often or sabbatical or laptop", limit=1, candidates=3, **kwargs)
    assert depths == [search.HYBRID_MIN_CANDIDATES] * 2  # the rankings are read as deep for both
    assert len(one) == 1 and len(more) == 2 and more[0].chunk_id == one[0].chunk_id
    # Which rankings found each passage: the sabbatical passage by its words and its meaning.
    assert more[0].section == "Benefits › Sabbatical" and more[0].by_words and more[0].by_meaning
    assert not search_workspace(workspace, "sabbatical", limit=1)[0].by_meaning  # words only
