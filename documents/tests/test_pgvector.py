"""Search by meaning on PostgreSQL with pgvector, for real: a PostgreSQL 18 with pgvector 0.8 on a spare port.

The suite's own database may be SQLite or a PostgreSQL without pgvector, so
the pgvector cases run in a child pytest whose DATABASE_URL points at the
throw-away cluster: the migrations (vector column), ingestion (vectors and
the HNSW index), hybrid search and its query count, the plan using the
index, and the chat turn's query count.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from documents.tests import pgvector_server

ROOT = Path(__file__).resolve().parents[2]
CASES = [
    "documents/tests/pgvector_cases.py",
    "documents/tests/test_vectors.py",
    "documents/tests/test_embedding_retries.py",
    "assistants/tests/test_api_and_pages.py::test_chat_turn_queries_do_not_grow_with_the_conversation",
]


@pytest.fixture(scope="module")
def pgvector_cluster():
    reason = pgvector_server.missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = pgvector_server.start()
    try:
        reason = pgvector_server.unusable_reason(cluster)
        if reason:
            pytest.skip(reason)
        yield cluster
    finally:
        cluster.destroy()


def test_the_pgvector_path(pgvector_cluster):
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "PYTEST_ADDOPTS"}}
    env.update(DATABASE_URL=pgvector_cluster.url("vectors"), CACHE_KEY_PREFIX="pgvector-test")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *CASES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    assert " passed" in output and "skipped" not in output.split("\n")[-2], output
