"""The pgvector path, run by test_pgvector.py against a PostgreSQL with pgvector (not collected on its own)."""

import pytest
from django.db import connection

from documents import vectors
from documents.tests.test_vectors import HANDBOOK
from llmgateway.embeddings import embed

pytestmark = pytest.mark.django_db


def test_the_database_has_pgvector():
    assert connection.vendor == "postgresql"
    assert vectors.state() == vectors.VectorState("pgvector")


def test_each_embedding_model_gets_an_hnsw_index_that_the_search_uses(ingest, workspace):
    document = ingest("benefits.md", HANDBOOK)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'documents_chunk' AND indexname = %s",
            [vectors._pg_index(document.embedding_model)],
        )
        definition = cursor.fetchone()[0]
    assert "USING hnsw" in definition and "vector_cosine_ops" in definition
    question = embed(["How often can I take a sabbatical?"])
    sql, params = vectors.nearest_sql([workspace.pk], question.vectors[0], question.model, None, 5)
    with connection.cursor() as cursor:
        # Three passages: a sequential scan is cheaper; with it off, the plan shows the index is usable.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Scan using {vectors._pg_index(question.model)}" in plan, plan


def test_vectors_are_stored_as_pgvector_values(ingest):
    document = ingest("benefits.md", HANDBOOK)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT vector_dims(embedding), count(*) FROM documents_chunk WHERE document_id = %s GROUP BY 1",
            [document.pk],
        )
        assert cursor.fetchall() == [(256, 2)]  # the title alone is no passage
