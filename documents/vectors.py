"""Passage vectors inside the database, for search by meaning next to full-text search.

    state(connection) -> VectorState(backend, problem)   # "pgvector" / "sqlite-vec", or "" and why not
    write(document_id, workspace_id, chunk_ids, embedded)  # store one document's vectors
    nearest(workspace_ids, vector, model, document_ids, k) -> rows like search.py's lexical rows
    forget(document_id)                                    # drop a document's vectors (re-embedding)

PostgreSQL: an unsized `vector` column `documents_chunk.embedding` (pgvector),
added by migration 0003 where the extension can be created, and for each
embedding model an HNSW index on `embedding::vector(dims)` restricted to that
model's rows (`WHERE embedding_model = '…'`), created when the model first
stores vectors. Queries order by cosine distance with the same expression and
condition, so the planner uses that index; `hnsw.iterative_scan` keeps
scanning until enough rows of the wanted workspace are found.

SQLite: a sqlite-vec `vec0` table per embedding model
(`documents_chunk_vec_<key>`: the passage id, its workspace as partition key,
its document, the vector), created when the model first stores vectors, with
a trigger that drops a passage's vector with the passage. sqlite-vec has no
approximate index: a query compares the question with every vector of the
workspace, so that scan is kept cheap. The nearest passages are read by numpy
from the table's own chunks (1,024 vectors a row): one BLAS product a chunk,
half the processor time of sqlite-vec's k-nearest query, whose distance loop
(as built on PyPI) adds each vector's squares one after the other; the same
passages, and sqlite-vec's query answers whenever the chunks are laid out
otherwise. Outside transactions they are read through a connection kept by the
process (a request's new connection would map the file anew: 10 ms of page
faults). The table still uses Euclidean distance (vectors are unit length, so
the order is the cosine order; sqlite-vec's own query computes it a quarter
faster than its cosine), and the database file is memory-mapped (the vectors
are copied from the mapped file instead of page by page through SQLite's
cache). Quantized coarse passes (bit or int8 vectors, then an exact
re-ranking) were measured and not kept (bench/vector_prefilter_bench.py): on
passages whose vectors lie close together bit codes lose most of the true
nearest passages unless hundreds of candidates are kept, and sqlite-vec 0.1.9
picks a vec0 scan's k nearest by repeated minimum search, so a scan keeping k
candidates costs in proportion to k times the rows (bit vectors: 2.3 ms for 20,
19 ms for 200 of 100,000); int8 keeps the nearest with 40 candidates but its
distance costs nearly what the float one does (16 against 21 ms).

`Chunk.embedding_model` names the model of each passage's vector, so a search
only ever compares vectors of the query's own model. Where neither extension
is available the state names the reason and search stays lexical.
"""

import contextlib
import functools
import hashlib
import logging
import os
import threading
from dataclasses import dataclass

from django.db import DatabaseError, OperationalError, transaction
from django.db import connection as default_connection

log = logging.getLogger(__name__)

PG_MISSING = (
    "pgvector is not installed in this PostgreSQL, so search matches words only (no search by meaning). "
    "Install the pgvector extension, then run `manage.py reindex --rebuild-index`."
)
# How many index candidates pgvector's HNSW scan considers (higher: better recall, slower).
HNSW_EF_SEARCH = 80


@dataclass(frozen=True)
class VectorState:
    backend: str
    problem: str = ""

    @property
    def available(self):
        return bool(self.backend)


def table_key(model):
    return hashlib.sha256(model.encode()).hexdigest()[:12]


def _sqlite_table(model):
    return f"documents_chunk_vec_{table_key(model)}"


def _pg_index(model):
    return f"documents_chunk_vec_{table_key(model)}"


def state(connection=None):
    """Whether this database can search by meaning, and if not, why."""
    connection = connection or default_connection
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        problem = getattr(connection, "vector_problem", None)
        if problem is None:
            problem = "the database backend does not load sqlite-vec (use corporate.backends.sqlite3)"
        return VectorState("" if problem else "sqlite-vec", problem)
    if connection.vendor == "postgresql":
        cached = getattr(connection, "_vector_state", None)
        if cached is None:
            cached = _pg_state(connection)
            connection._vector_state = cached
        return cached
    return VectorState("", f"{connection.vendor} has no vector search")


def _pg_state(connection):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass('documents_chunk') AND a.attname = 'embedding' AND NOT a.attisdropped"
        )
        row = cursor.fetchone()
    if row and row[0] == "vector":
        return VectorState("pgvector")
    return VectorState("", PG_MISSING)


def forget_state(connection=None):
    """After the column changed (migration, rebuild): look again on the next use."""
    connection = connection or default_connection
    if hasattr(connection, "_vector_state"):
        del connection._vector_state


# SQLite maps up to this much of the database file into memory: the nearest-passages scan then
# reads the vectors in place (100,000 passages of 256 dimensions: 100 MB of vectors).
SQLITE_MMAP_BYTES = 1 << 30


def on_connection_created(sender, connection, **kwargs):
    """Every new connection: PostgreSQL lets HNSW scans go on until enough rows pass the workspace filter;
    SQLite maps the file into memory for the vector scan."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
        return
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {HNSW_EF_SEARCH}")


def install(schema_editor):
    """Migration 0003: the vector column (PostgreSQL with pgvector). SQLite tables come per model, on first use."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        available = cursor.fetchone() is not None
    if available:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SAVEPOINT vector_install")
                cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
                cursor.execute("ALTER TABLE documents_chunk ADD COLUMN IF NOT EXISTS embedding vector")
                cursor.execute("RELEASE SAVEPOINT vector_install")
        except Exception as exc:  # noqa: BLE001 - e.g. not allowed to create extensions: stay lexical
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK TO SAVEPOINT vector_install")
            log.warning("pgvector could not be installed (%s); search stays lexical", exc)
    forget_state(connection)


def uninstall(schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE documents_chunk DROP COLUMN IF EXISTS embedding")
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'documents_chunk_vec_%'")
            tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            if table.count("_") == 3:  # the vec0 table itself; its shadow tables go with it
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_ad")
                schema_editor.execute(f"DROP TABLE IF EXISTS {table}")
    forget_state(connection)


def rebuild(connection=None):
    """`reindex --rebuild-index`: add the vector column where pgvector has become available; on SQLite,
    move tables made with the cosine metric to the faster Euclidean one (the same order)."""
    connection = connection or default_connection
    if connection.vendor == "sqlite" and state(connection).available:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name LIKE 'documents_chunk_vec_%' "
                "AND sql LIKE '%distance_metric=cosine%'"
            )
            tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                _to_euclidean(cursor, table)
    if connection.vendor == "postgresql":

        class Editor:
            pass

        editor = Editor()
        editor.connection = connection
        install(editor)


def _to_euclidean(cursor, table):
    cursor.execute(f"SELECT chunk_id, workspace_id, document_id, embedding FROM {table}")
    rows = cursor.fetchall()
    cursor.execute(f"SELECT sql FROM sqlite_master WHERE name = '{table}'")
    definition = cursor.fetchone()[0].replace(" distance_metric=cosine", "")
    cursor.execute(f"DROP TABLE {table}")
    cursor.execute(definition)
    cursor.executemany(
        f"INSERT INTO {table}(chunk_id, workspace_id, document_id, embedding) VALUES (%s, %s, %s, %s)", rows
    )


def prepare(embedded, connection=None):
    """Create the storage for a model's vectors if missing: call before the transaction that writes them.

    (PostgreSQL refuses CREATE INDEX on a table with pending foreign-key checks, which a
    transaction that has just inserted passages has.)
    """
    connection = connection or default_connection
    if not state(connection).available or embedded is None:
        return
    with connection.cursor() as cursor:
        _ensure_storage(cursor, connection, embedded.model, embedded.dims)


def _ensure_storage(cursor, connection, model, dims):
    if connection.vendor == "postgresql":
        name = _pg_index(model)
        cursor.execute("SELECT 1 FROM pg_indexes WHERE tablename = 'documents_chunk' AND indexname = %s", [name])
        if cursor.fetchone() is None:
            literal = model.replace("'", "''")
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute(
                        f"CREATE INDEX IF NOT EXISTS {name} ON documents_chunk USING hnsw "
                        f"((embedding::vector({int(dims)})) vector_cosine_ops) WHERE embedding_model = '{literal}'"
                    )
            except DatabaseError as exc:
                # Inside a transaction that has written passages PostgreSQL refuses; search works
                # without the index (an exact scan) until the next write outside one creates it.
                log.warning("vector index %s not created yet: %s", name, exc)
        return
    if connection.vendor == "sqlite":
        table = _sqlite_table(model)
        cursor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING vec0("
            "chunk_id integer primary key, workspace_id integer partition key, document_id integer, "
            f"embedding float[{int(dims)}])"  # Euclidean: see the module's docstring
        )
        cursor.execute(
            f"CREATE TRIGGER IF NOT EXISTS {table}_ad AFTER DELETE ON documents_chunk BEGIN "
            f"DELETE FROM {table} WHERE chunk_id = old.id; END"
        )


def _pg_vector(row):
    return "[" + ",".join(f"{x:.6g}" for x in row.tolist()) + "]"


def write(document_id, workspace_id, chunk_ids, embedded, connection=None, replace=True):
    """Store the vectors of one document's passages (in chunk_ids order) and name their model. Call in a transaction.

    `replace=False` skips dropping the document's earlier vectors (a bulk load of new passages).
    """
    from documents.models import Chunk

    connection = connection or default_connection
    if not state(connection).available or not chunk_ids:
        return False
    model, dims = embedded.model, embedded.dims
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            _ensure_storage(cursor, connection, model, dims)
            table = _sqlite_table(model)
            if replace:
                cursor.execute(f"DELETE FROM {table} WHERE document_id = %s", [document_id])
            cursor.executemany(
                f"INSERT INTO {table}(chunk_id, workspace_id, document_id, embedding) VALUES (%s, %s, %s, %s)",
                [
                    (chunk_id, workspace_id, document_id, vector.tobytes())
                    for chunk_id, vector in zip(chunk_ids, embedded.vectors, strict=True)
                ],
            )
        else:
            from psycopg2.extras import execute_values

            execute_values(
                cursor.cursor,
                "UPDATE documents_chunk AS c SET embedding = v.e::vector, embedding_model = "
                + _quote(model).replace("%", "%%")
                + " FROM (VALUES %s) AS v(id, e) WHERE c.id = v.id",
                [(chunk_id, _pg_vector(vector)) for chunk_id, vector in zip(chunk_ids, embedded.vectors, strict=True)],
                page_size=500,
            )
    if connection.vendor == "sqlite":
        Chunk.objects.filter(document_id=document_id).update(embedding_model=model)
    return True


def _quote(text):
    return "'" + text.replace("'", "''") + "'"


# Rows carry the cosine distance: from the Euclidean distance d of unit vectors it is d² / 2 (tables
# made before the switch to Euclidean distance hold the cosine distance itself).
SQLITE_NEAREST = """
SELECT c.id, c.document_id, c.position, c.page, c.section, c.text,
       CASE WHEN (SELECT sql FROM sqlite_master WHERE name = '{table}') LIKE '%%distance_metric=cosine%%'
            THEN v.distance ELSE v.distance * v.distance / 2 END AS distance
FROM (SELECT chunk_id, distance FROM {table} WHERE embedding MATCH %s AND k = %s AND workspace_id {workspaces}) v
JOIN documents_chunk c ON c.id = v.chunk_id
WHERE c.embedding_model = %s {documents}
ORDER BY v.distance, c.id
"""

# hnsw.iterative_scan = relaxed_order may return the index's rows slightly out of order: the
# materialized set of k rows is sorted again by its exact distance.
PG_NEAREST = """
WITH near AS MATERIALIZED (
    SELECT c.id, c.document_id, c.position, c.page, c.section, c.text,
           (c.embedding::vector({dims}) <=> %s::vector({dims})) AS distance
    FROM documents_chunk c
    WHERE c.embedding_model = {model} AND c.workspace_id = ANY(%s) {documents}
    ORDER BY c.embedding::vector({dims}) <=> %s::vector({dims})
    LIMIT %s
)
SELECT * FROM near ORDER BY distance, id
"""


def nearest_sql(workspace_ids, vector, model, document_ids, k, connection=None):
    """(sql, params) of the nearest-passages query, or None when this database has no vectors of that model."""
    connection = connection or default_connection
    if not state(connection).available:
        return None
    dims = int(vector.shape[0])
    if connection.vendor == "sqlite":
        table = _sqlite_table(model)
        workspaces = "= %s" if len(workspace_ids) == 1 else "IN ({})".format(", ".join(["%s"] * len(workspace_ids)))
        documents, params = "", [vector.astype("float32").tobytes(), int(k), *workspace_ids, model]
        if document_ids is not None:
            documents = "AND c.document_id IN ({})".format(", ".join(["%s"] * len(document_ids)))
            params += list(document_ids)
        return SQLITE_NEAREST.format(table=table, workspaces=workspaces, documents=documents), params
    literal = _pg_vector(vector)
    documents, params = "", [literal, list(workspace_ids)]
    if document_ids is not None:
        documents = "AND c.document_id = ANY(%s)"
        params.append(list(document_ids))
    params += [literal, int(k)]
    return PG_NEAREST.format(dims=dims, model=_quote(model), documents=documents), params


def nearest(workspace_ids, vector, model, document_ids=None, k=20, connection=None):
    """The k passages nearest to the vector: (id, document_id, position, page, section, text, distance) rows."""
    connection = connection or default_connection
    if not state(connection).available:
        return []
    if connection.vendor == "sqlite":
        rows = _sqlite_nearest(connection, workspace_ids, vector, model, document_ids, k)
        if rows is not None:
            return rows
    query = nearest_sql(workspace_ids, vector, model, document_ids, k, connection)
    with connection.cursor() as cursor:
        try:
            cursor.execute(*query)
        except OperationalError as exc:
            # No passage was embedded with this model yet: its table does not exist (SQLite only;
            # a failed statement leaves SQLite's transaction usable).
            if connection.vendor == "sqlite" and "no such table" in str(exc):
                return []
            raise
        return cursor.fetchall()


# The vectors of a workspace as sqlite-vec 0.1 keeps them: a row per chunk of up to `size` vectors
# (1,024 by default) in `<table>_chunks`, with the chunk's partition (the workspace), a bitmap of its
# slots in use and the passage id of each slot (64-bit integers); the vectors themselves, `size`
# float32 rows one after the other, in `<table>_vector_chunks00` under the chunk's id.
SQLITE_CHUNKS = (
    'SELECT c.size, c.validity, c.rowids, v.vectors FROM "{table}_chunks" c '
    'JOIN "{table}_vector_chunks00" v ON v.rowid = c.chunk_id WHERE c.partition00 IN ({workspaces})'
)
SQLITE_PASSAGES = """
SELECT c.id, c.document_id, c.position, c.page, c.section, c.text
FROM documents_chunk c
WHERE c.id IN ({ids}) AND c.embedding_model = %s {documents}
"""


def _sqlite_nearest(connection, workspace_ids, vector, model, document_ids, k):
    """The nearest passages on SQLite by reading the vec0 table's chunks with numpy; None when the table
    is not laid out as read here (the caller then asks sqlite-vec's own k-nearest query).

    The same passages as vec0's exact scan, in half the processor time: sqlite-vec 0.1.9 as built
    on PyPI sums each distance's squares in order, one vector at a time (four lanes, then a
    horizontal add at every step), two thirds of its scan; here each chunk of 1,024 vectors is
    multiplied by the question in one BLAS product while it is still in the processor's cache
    (vectors are unit length, so the cosine distance is 1 - the dot product). What remains is
    copying the vectors out of SQLite's pages (bench/README.md).
    """
    import numpy as np

    k = int(k)
    query = np.ascontiguousarray(vector, dtype=np.float32)
    dims = query.shape[0]
    sql = SQLITE_CHUNKS.format(table=_sqlite_table(model), workspaces=", ".join(["%s"] * len(workspace_ids)))
    params = [int(pk) for pk in workspace_ids]
    scores, ids = [], []

    def scan(chunks):
        with _one_blas_thread():
            for size, validity, rowids, vectors_blob in chunks:
                if len(vectors_blob) != size * dims * 4 or len(rowids) != size * 8 or len(validity) * 8 < size:
                    return False  # other dimensions or element type: sqlite-vec's query says what is wrong
                chunk_scores = np.frombuffer(vectors_blob, dtype=np.float32).reshape(size, dims) @ query
                chunk_ids = np.frombuffer(rowids, dtype=np.int64)
                used = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=size, bitorder="little")
                if not used.all():
                    used = used.astype(bool)
                    chunk_scores, chunk_ids = chunk_scores[used], chunk_ids[used]
                scores.append(chunk_scores)
                ids.append(chunk_ids)
        return True

    with _sqlite_reader(connection) as reader:
        try:
            if reader is not None:
                # Timed, counted and logged when slow like the connection's own queries (the whole read).
                def execute(sql, params, many, context):
                    return scan(reader.execute(sql.replace("%s", "?"), params))

                for wrapper in reversed(connection.execute_wrappers):
                    execute = functools.partial(wrapper, execute)
                laid_out = execute(sql, params, False, {"connection": connection, "cursor": None})
            else:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    laid_out = scan(cursor)
        except (OperationalError, connection.Database.OperationalError):
            laid_out = False  # no vectors of this model yet, or another layout: sqlite-vec decides
    if not laid_out:
        return None
    if k <= 0 or not scores:
        return []
    scores, ids = np.concatenate(scores), np.concatenate(ids)
    if len(scores) > k:  # the k best, and any tied with the k-th, then ordered by distance and id
        kth = scores[np.argpartition(-scores, k - 1)[:k]].min()
        keep = np.flatnonzero(scores >= kth)
        scores, ids = scores[keep], ids[keep]
    order = np.lexsort((ids, -scores))[:k]
    distance = {int(ids[i]): 1.0 - float(scores[i]) for i in order}
    if not distance:
        return []
    documents, params = "", [*distance, model]
    if document_ids is not None:
        documents = "AND c.document_id IN ({})".format(", ".join(["%s"] * len(document_ids)))
        params += list(document_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            SQLITE_PASSAGES.format(ids=", ".join(["%s"] * len(distance)), documents=documents),
            params,
        )
        rows = cursor.fetchall()
    return sorted(((*row, distance[row[0]]) for row in rows), key=lambda row: (row[6], row[0]))


# Connections of this process's own that read vectors outside transactions, kept between requests.
# A request's connection is new (SQLite's CONN_MAX_AGE is 0, and each gevent request has its own),
# and the first read of 100 MB of vectors through a new connection's memory map costs about
# 1,700 page faults, 10 ms of processor time, as much again as the read itself (bench/README.md).
SQLITE_READERS_KEPT = 4
_readers = {}
_readers_lock = threading.Lock()


@contextlib.contextmanager
def _sqlite_reader(connection):
    """A kept connection to the same database file (read only), or None where the query must see the
    connection's own transaction (inside one, or a database in memory): then the caller uses it."""
    if connection.in_atomic_block or not connection.get_autocommit() or connection.is_in_memory_db():
        yield None
        return
    name = str(connection.settings_dict["NAME"])
    try:
        stat = os.stat(name)
    except OSError:
        yield None
        return
    place = (os.getpid(), connection.alias, name)  # a forked process, or the file made anew: new readers
    key = (*place, stat.st_dev, stat.st_ino)
    with _readers_lock:
        for old in [other for other in _readers if other[:3] == place and other != key]:
            for reader in _readers.pop(old):
                reader.close()
        idle = _readers.get(key)
        reader = idle.pop() if idle else None
    if reader is None:
        from django.db.backends.sqlite3.base import DatabaseWrapper

        reader = DatabaseWrapper.get_new_connection(connection, connection.get_connection_params())
        _load_sqlite_vec(reader)  # not needed to read the chunks, but the schema names vec0 tables
        reader.isolation_level = None  # autocommit: every read sees the last commit
        reader.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
        reader.execute("PRAGMA query_only = 1")
    try:
        yield reader
    except BaseException:
        reader.close()
        raise
    with _readers_lock:
        idle = _readers.setdefault(key, [])
        if len(idle) < SQLITE_READERS_KEPT:
            idle.append(reader)
            reader = None
    if reader is not None:
        reader.close()


def _load_sqlite_vec(conn):
    from corporate.backends.sqlite3.base import load_sqlite_vec

    return load_sqlite_vec(conn)


_blas = None


def _one_blas_thread():
    """BLAS on the calling thread: a product of 1,024 x 256 would otherwise wake a pool of BLAS threads,
    which spin on a busy host. (The controller is made once: making it lists the process's libraries,
    about 1 ms; switching the limit then costs microseconds.)"""
    global _blas
    try:
        if _blas is None:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController()
        return _blas.limit(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - installed with requirements.txt
        return contextlib.nullcontext()


def exact_nearest_ids(workspace_ids, vector, model, k, connection=None):
    """Ids of the k passages nearest to the vector by an exact scan (what the index's answer is checked against)."""
    import numpy as np

    connection = connection or default_connection
    if connection.vendor == "sqlite":
        marks = ", ".join(["%s"] * len(workspace_ids))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT chunk_id, embedding FROM {_sqlite_table(model)} WHERE workspace_id IN ({marks})",
                list(workspace_ids),
            )
            rows = cursor.fetchall()
        if not rows:
            return []
        ids = np.array([row[0] for row in rows])
        matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), -1)
        order = np.lexsort((ids, -(matrix @ vector.astype(np.float32))))[:k]
        return ids[order].tolist()
    sql, params = nearest_sql(workspace_ids, vector, model, None, k, connection)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]
