"""Search by meaning on SQLite: the nearest passages read from sqlite-vec's own storage.

Search reads the vectors of a workspace from the vec0 table's chunks with numpy
(documents/vectors.py); these check that it answers exactly as sqlite-vec's own
k-nearest query, and falls back to that query when the chunks are laid out otherwise.
"""

import pytest

from documents import vectors
from documents.models import Chunk
from documents.tests.conftest import remake_vec_table
from llmgateway.embeddings import embed

pytestmark = pytest.mark.django_db


def needs_sqlite_vec():
    from django.db import connection

    state = vectors.state()
    if connection.vendor != "sqlite" or not state.available:
        pytest.skip(f"sqlite-vec's storage: {connection.vendor}, {state.problem or state.backend}")


def _sections(topic, count):
    return "\n\n".join(
        f"## {topic} {n}\n\nThe {topic} rule number {n} says staff {verb} the {thing} every {n} weeks."
        for n, (verb, thing) in enumerate(
            zip(
                ["review", "renew", "book", "share", "clean", "pay", "order", "report"] * 8,
                ["laptop", "desk", "travel", "lunch", "badge", "phone", "chair", "budget", "garden", "car"] * 8,
                strict=False,
            )
        )
        if n < count
    ).encode()


def test_sqlite_nearest_passages_are_sqlite_vec_own_k_nearest(
    ingest, workspace, other_workspace, outsider, monkeypatch
):
    """On SQLite the nearest passages are read from sqlite-vec's chunks with numpy: the same rows as
    sqlite-vec's own k-nearest query, across several chunks, after deletions (freed slots), for several
    workspaces and documents; and sqlite-vec's query answers when the chunks are not laid out as expected."""
    needs_sqlite_vec()
    from django.db import connection

    model = embed(["x"]).model
    table = vectors._sqlite_table(model)
    first = ingest("policies.md", b"# Policies\n\n" + _sections("policy", 30))
    # Chunks of 8 vectors: several chunks per workspace, the last one partly filled.
    remake_vec_table(table, "float[256], chunk_size=8")
    second = ingest("travel.md", b"# Travel\n\n" + _sections("travel", 12))
    theirs = ingest("theirs.md", b"# Theirs\n\n" + _sections("policy", 20), ws=other_workspace, user=outsider)
    # Freed slots, in full chunks and in the last one; a new passage may then reuse a slot.
    gone = list(Chunk.objects.filter(document=first).order_by("position").values_list("pk", flat=True))[3:9]
    Chunk.objects.filter(pk__in=gone).delete()
    ingest("late.md", b"# Late\n\nThe policy on late trains: staff book a taxi and keep the receipt.")
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}_chunks"')
        assert cursor.fetchone()[0] >= 6

    def own(workspace_ids, vector, document_ids, k):
        with connection.cursor() as cursor:
            cursor.execute(*vectors.nearest_sql(workspace_ids, vector, model, document_ids, k))
            return cursor.fetchall()

    questions = embed(["How often is the laptop reviewed?", "taxi receipt", "travel budget", "garden"])
    cases = [
        ([workspace.pk], None, 5),
        ([workspace.pk], None, 200),
        ([workspace.pk, other_workspace.pk], None, 20),
        ([workspace.pk], [second.pk], 20),
        ([other_workspace.pk], [theirs.pk, first.pk], 7),
    ]
    for vector in questions.vectors:
        for workspace_ids, document_ids, k in cases:
            read = vectors._sqlite_nearest(connection, workspace_ids, vector, model, document_ids, k)
            # (sqlite-vec answers `workspace_id IN (…)` with k rows per workspace: the first k are the k nearest)
            expected = own(workspace_ids, vector, document_ids, k)[:k]
            assert read is not None and expected
            assert [row[:6] for row in read] == [row[:6] for row in expected]
            assert [row[6] for row in read] == pytest.approx([row[6] for row in expected], abs=1e-5)
            assert not {row[0] for row in read} & set(gone)
            assert vectors.nearest(workspace_ids, vector, model, document_ids, k) == read
    # Another layout of sqlite-vec's tables (a later version): its own query answers.
    monkeypatch.setattr(vectors, "SQLITE_CHUNKS", vectors.SQLITE_CHUNKS.replace("c.rowids", "c.no_such_column"))
    vector = questions.vectors[0]
    assert vectors._sqlite_nearest(connection, [workspace.pk], vector, model, None, 5) is None
    assert [row[0] for row in vectors.nearest([workspace.pk], vector, model, None, 5)] == [
        row[0] for row in own([workspace.pk], vector, None, 5)
    ]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_vectors_are_read_through_a_kept_connection(ingest, workspace, settings, caplog):
    """A request's connection is new each time: outside transactions the vectors are read through a
    connection kept by the process (its memory map already in place), which sees every commit."""
    needs_sqlite_vec()
    from django.db import connection, transaction

    vectors._readers.clear()
    first = ingest("policies.md", b"# Policies\n\n" + _sections("policy", 12))
    question = embed(["How often is the laptop reviewed?"])
    vector, model = question.vectors[0], question.model
    with transaction.atomic():  # inside a transaction: the connection's own view, nothing kept
        inside = vectors.nearest([workspace.pk], vector, model, k=5)
    assert inside and not vectors._readers
    settings.DB_SLOW_QUERY_MS = 0  # every query logged: the read through the kept connection too
    with caplog.at_level("WARNING", logger="corporate.slow_queries"):
        outside = vectors.nearest([workspace.pk], vector, model, k=5)
    assert outside == inside
    assert any(f"{vectors._sqlite_table(model)}_chunks" in record.getMessage() for record in caplog.records)
    kept = [reader for idle in vectors._readers.values() for reader in idle]
    assert len(kept) == 1
    connection.close()  # the end of a request
    later = ingest("laptops.md", b"# Laptops\n\nThe laptop is reviewed by the IT desk every spring and autumn.")
    found = vectors.nearest([workspace.pk], vector, model, k=40)
    assert {row[1] for row in found} == {first.pk, later.pk}  # the commit after the first read is seen
    assert [reader for idle in vectors._readers.values() for reader in idle] == kept  # the same connection
    # A model without vectors yet (no table): nothing found, and the kept connection stays.
    assert vectors.nearest([workspace.pk], vector, "model-without-vectors") == []
    assert [reader for idle in vectors._readers.values() for reader in idle] == kept
    with pytest.raises(Exception, match="readonly|read-only|query_only"):
        kept[0].execute("DELETE FROM documents_chunk")
