"""SQLite with the sqlite-vec extension loaded into every connection, for vector search inside the database.

Python builds often leave out SQLite's extension loading; when the
`pysqlite3` package (pysqlite3-binary: a current SQLite built with it) is
installed, it stands in for the standard library's `sqlite3` module before
Django's SQLite backend is imported. Each new connection then loads
sqlite-vec. Without either, everything works as before and search stays
lexical: `vector_problem` on the connection says why (shown by /health and
the admin).
"""

import sys

try:  # must come before Django's SQLite backend is imported
    import pysqlite3
    import pysqlite3.dbapi2

    if "django.db.backends.sqlite3.base" not in sys.modules:
        sys.modules["sqlite3"] = pysqlite3
        sys.modules["sqlite3.dbapi2"] = pysqlite3.dbapi2
except ImportError:  # pragma: no cover - the standard module, without extension loading
    pass

from django.db.backends.sqlite3 import base  # noqa: E402


class DatabaseWrapper(base.DatabaseWrapper):
    vector_problem = ""

    def get_new_connection(self, conn_params):
        conn = super().get_new_connection(conn_params)
        self.vector_problem = load_sqlite_vec(conn)
        return conn


def load_sqlite_vec(conn):
    """Load sqlite-vec into a connection; '' on success, else the reason in words."""
    if not hasattr(conn, "enable_load_extension"):
        return "this Python's SQLite cannot load extensions (install pysqlite3-binary)"
    try:
        import sqlite_vec
    except ImportError:
        return "the sqlite-vec package is not installed"
    try:
        conn.enable_load_extension(True)
        try:
            sqlite_vec.load(conn)
        finally:
            conn.enable_load_extension(False)
    except Exception as exc:  # noqa: BLE001 - any failure means lexical search only
        return f"sqlite-vec could not be loaded ({exc})"
    return ""
