"""Full-text search over a workspace's passages.

The interface the rest of the platform calls (keep it stable):

    search(user, query, *, workspace=None, document_ids=None, limit=10) -> list[SearchResult]
        Searches the workspaces the user belongs to (through the permission
        module); an explicit `workspace` must be one of them (Http404 for
        outsiders, PermissionDenied for too low a role). `document_ids`
        narrows the search to those documents.

    search_workspace(workspace, query, *, document_ids=None, limit=10, vector=None, vector_model="", candidates=0)
        The same for server-side code that has already checked permissions.
        With a query `vector` (from llmgateway.embeddings, of `vector_model`)
        the search is hybrid: the full-text ranking and the passages nearest
        in meaning (documents/vectors.py) are fused by reciprocal rank, so a
        passage that says the same thing in other words is found too. Where
        the database has no vector search, it is lexical only. `candidates`
        (more than `limit`) returns that many of the fused passages, best
        first, for a caller that re-ranks them: the two rankings are read as
        deep as for `limit` (the same queries), the fusion keeps more of them.

Each `SearchResult` has `.document` (a Document, with `.id` and `.title`),
`.chunk_id`, `.position`, `.page` (PDF page or None), `.section`,
`.location` ("page 3" or the section), `.snippet` (the passage as plain text
around the first match: no heading line, Markdown marks or table pipes;
HTML-safe, the matched words in <mark>), `.text` (the passage's plain text), `.score` (higher is better;
comparable within one backend only) and `.url` (the document page opened at
the passage). Queries use web-search syntax on both backends: words are
ANDed, "quoted phrases", `or`, and `-word` to exclude.

Backends: PostgreSQL keeps each passage's `tsvector` in a narrow side table
with a GIN index, documents_chunk_lexemes, kept in sync with documents_chunk
by triggers (websearch_to_tsquery, ts_rank, ts_headline; migration 0006 moved
it there from a generated column of documents_chunk); SQLite an FTS5 table kept in
sync with documents_chunk by triggers (bm25, snippet). Both are created by
migration 0002 with the SQL below. On both backends a query that matches
more than RANK_CANDIDATES passages of the workspace ranks only that many of
them (a very common word), the first in the index's order, and with them, in a
hybrid search, every one of the passages nearest in meaning that holds the
words: the cap bounds latency, and the passages most likely to be shown are
ranked by words whatever their place in the index.
"""

import html
import re
from dataclasses import dataclass

from django.db import connection as default_connection
from django.utils.html import escape
from django.utils.safestring import mark_safe

from workspaces.permissions import check, workspace_ids

MAX_LIMIT = 100
MARK_START, MARK_END = "\ue000", "\ue001"
SEARCH_CONFIG = "english"
# Full-text search ranks at most this many matching passages; a query matching more (a very common
# word) ranks a sample of them, which keeps its latency bounded. The cost is per candidate: on PostgreSQL
# a heap page read and a decompressed tsvector each (100,000 passages, queries matching 500-8,000 of
# them: p50 / p95 13.2 / 63.3 ms of execution at 2,000, 8.3 / 15.8 ms at 1,000); on SQLite about 1.7 ms
# of bm25 at 1,000, 3.4 ms at 2,000. A hybrid search ranks the nearest passages that hold the words too.
RANK_CANDIDATES = 1000
# A passage's heading path is searched with its text (a passage under "Steering council › Membership"
# answers "how many sit on the steering council" without naming the council): on SQLite a column of
# its own, weighted like the text; on PostgreSQL the path's words open the tsvector.
SECTION_WEIGHT = 1.0
# PostgreSQL adds new passages' words to a GIN index through its pending list, which every search
# then reads whole (pages of unsorted entries, up to `gin_pending_list_limit`: 4 MB by default, about
# 500 pages per query). The search indexes keep it small: each search reads at most this many kB of it,
# and inserting flushes the list into the index more often (the same total work, in smaller batches).
GIN_PENDING_KB = 256
SEARCH_GIN_INDEXES = ("documents_chunk_search", "documents_chunk_ws_search")
POSTGRES_LEXEMES = "to_tsvector('{config}'::regconfig, coalesce({row}section, '') || ' ' || {row}text)"

SQLITE_INSTALL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS documents_chunk_fts USING fts5("
    "text, section, content='documents_chunk', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS documents_chunk_fts_ai AFTER INSERT ON documents_chunk BEGIN "
    "INSERT INTO documents_chunk_fts(rowid, text, section) VALUES (new.id, new.text, new.section); END",
    "CREATE TRIGGER IF NOT EXISTS documents_chunk_fts_ad AFTER DELETE ON documents_chunk BEGIN "
    "INSERT INTO documents_chunk_fts(documents_chunk_fts, rowid, text, section) "
    "VALUES ('delete', old.id, old.text, old.section); END",
    "CREATE TRIGGER IF NOT EXISTS documents_chunk_fts_au AFTER UPDATE OF text, section ON documents_chunk BEGIN "
    "INSERT INTO documents_chunk_fts(documents_chunk_fts, rowid, text, section) "
    "VALUES ('delete', old.id, old.text, old.section); "
    "INSERT INTO documents_chunk_fts(rowid, text, section) VALUES (new.id, new.text, new.section); END",
]
SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS documents_chunk_fts_au",
    "DROP TRIGGER IF EXISTS documents_chunk_fts_ad",
    "DROP TRIGGER IF EXISTS documents_chunk_fts_ai",
    "DROP TABLE IF EXISTS documents_chunk_fts",
]
# PostgreSQL keeps each passage's tsvector in a narrow side table, documents_chunk_lexemes (one row per
# passage, kept in sync by triggers). Ranking reads the tsvector of every candidate: in documents_chunk,
# beside the text and the embedding, a row is over the 2 KB TOAST threshold and the tsvector went out of
# line (an extra TOAST read per candidate, the larger part of a common word's search at 1,000,000
# passages); alone with three ids it stays in the row (STORAGE MAIN: compressed in place, rarely moved).
POSTGRES_INSTALL = [
    "CREATE TABLE IF NOT EXISTS documents_chunk_lexemes ("
    "chunk_id bigint PRIMARY KEY, workspace_id bigint NOT NULL, document_id bigint NOT NULL, "
    "search_vector tsvector NOT NULL)",
    "ALTER TABLE documents_chunk_lexemes ALTER COLUMN search_vector SET STORAGE MAIN",
    "CREATE OR REPLACE FUNCTION documents_chunk_lexemes_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'TRUNCATE' THEN TRUNCATE documents_chunk_lexemes; RETURN NULL; END IF; "
    "IF TG_OP = 'DELETE' THEN DELETE FROM documents_chunk_lexemes WHERE chunk_id = OLD.id; RETURN NULL; END IF; "
    "INSERT INTO documents_chunk_lexemes (chunk_id, workspace_id, document_id, search_vector) "
    f"VALUES (NEW.id, NEW.workspace_id, NEW.document_id, {POSTGRES_LEXEMES.format(config=SEARCH_CONFIG, row='NEW.')}) "
    "ON CONFLICT (chunk_id) DO UPDATE SET workspace_id = EXCLUDED.workspace_id, "
    "document_id = EXCLUDED.document_id, search_vector = EXCLUDED.search_vector; "
    "RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER documents_chunk_lexemes_write AFTER INSERT OR UPDATE OF text, section, workspace_id, document_id "
    "ON documents_chunk FOR EACH ROW EXECUTE FUNCTION documents_chunk_lexemes_sync()",
    "CREATE OR REPLACE TRIGGER documents_chunk_lexemes_delete AFTER DELETE "
    "ON documents_chunk FOR EACH ROW EXECUTE FUNCTION documents_chunk_lexemes_sync()",
    "CREATE OR REPLACE TRIGGER documents_chunk_lexemes_truncate AFTER TRUNCATE "
    "ON documents_chunk FOR EACH STATEMENT EXECUTE FUNCTION documents_chunk_lexemes_sync()",
    # search: matching passages (websearch_to_tsquery @@ search_vector).
    "CREATE INDEX IF NOT EXISTS documents_chunk_search ON documents_chunk_lexemes USING GIN (search_vector) "
    f"WITH (gin_pending_list_limit = {GIN_PENDING_KB})",
]
# search of one workspace (the search page, an assistant's retrieval): its matching passages in one
# index scan, however common the words are in other workspaces (btree_gin puts workspace_id in a GIN index).
POSTGRES_WORKSPACE_INDEX = [
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    "CREATE INDEX IF NOT EXISTS documents_chunk_ws_search ON documents_chunk_lexemes "
    f"USING GIN (workspace_id, search_vector) WITH (gin_pending_list_limit = {GIN_PENDING_KB})",
]
POSTGRES_UNINSTALL = [
    "DROP TRIGGER IF EXISTS documents_chunk_lexemes_truncate ON documents_chunk",
    "DROP TRIGGER IF EXISTS documents_chunk_lexemes_delete ON documents_chunk",
    "DROP TRIGGER IF EXISTS documents_chunk_lexemes_write ON documents_chunk",
    "DROP FUNCTION IF EXISTS documents_chunk_lexemes_sync()",
    "DROP TABLE IF EXISTS documents_chunk_lexemes",
]
# The former layout (migrations 0002-0005): a generated tsvector column in documents_chunk.
POSTGRES_INLINE = [
    "ALTER TABLE documents_chunk ADD COLUMN IF NOT EXISTS search_vector tsvector "
    f"GENERATED ALWAYS AS (to_tsvector('{SEARCH_CONFIG}'::regconfig, text)) STORED",
    "CREATE INDEX IF NOT EXISTS documents_chunk_search ON documents_chunk USING GIN (search_vector)",
]

# The passages' highlighted snippets (ts_headline) are made for the first `snippets` rows only: a
# hybrid search ranks more passages than it shows (the rest are fused with the nearest passages).
# Only the ranked few are read from documents_chunk; matching and ranking read the side table alone.
POSTGRES_QUERY = f"""
WITH q AS (SELECT websearch_to_tsquery('{SEARCH_CONFIG}', %s) AS query)
SELECT c.id, c.document_id, c.position, c.page, c.section, c.text, top.score,
       CASE WHEN top.n <= %s THEN ts_headline('{SEARCH_CONFIG}', c.text, q.query, %s) END
FROM (
    SELECT m.chunk_id, m.score, row_number() OVER (ORDER BY m.score DESC, m.chunk_id) AS n
    FROM (
        SELECT DISTINCT l.chunk_id, ts_rank(l.search_vector, q.query) AS score
        FROM (
            (SELECT c.chunk_id, c.search_vector
            FROM documents_chunk_lexemes c
            WHERE c.search_vector @@ websearch_to_tsquery('{SEARCH_CONFIG}', %s) AND {{workspaces}} {{documents}}
            LIMIT {{candidates}}) {{also}}
        ) l, q
    ) m
    ORDER BY m.score DESC, m.chunk_id
    LIMIT %s
) top
JOIN documents_chunk c ON c.id = top.chunk_id, q
ORDER BY top.n
"""
# Matching passages among given ids (a hybrid search's nearest), ranked even beyond the cap.
POSTGRES_ALSO = f"""UNION ALL
            SELECT c.chunk_id, c.search_vector
            FROM documents_chunk_lexemes c
            WHERE c.chunk_id = ANY(%s::bigint[])
              AND c.search_vector @@ websearch_to_tsquery('{SEARCH_CONFIG}', %s) AND {{workspaces}} {{documents}}"""
HEADLINE_OPTIONS = (
    f'StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=" … "'
)

# CROSS JOIN keeps the full-text match as the outer loop: left to itself, SQLite 3.4x may walk the
# workspace's passages and run the match once for each of them. As on PostgreSQL, bm25 ranks at most
# RANK_CANDIDATES matching passages of the workspaces (the first ones), and snippets are made for the
# first `snippets` rows only (one look-up in the full-text index each).
SQLITE_QUERY = """
WITH capped AS MATERIALIZED (
    SELECT documents_chunk_fts.rowid AS id, -bm25(documents_chunk_fts, 1.0, {section_weight}) AS score
    FROM documents_chunk_fts CROSS JOIN documents_chunk c ON c.id = documents_chunk_fts.rowid
    WHERE documents_chunk_fts MATCH %s AND c.workspace_id IN ({workspaces}) {documents}
    LIMIT {candidates}
)
SELECT c.id, c.document_id, c.position, c.page, c.section, c.text, top.score,
       CASE WHEN top.n <= %s THEN (
           SELECT snippet(documents_chunk_fts, 0, char(57344), char(57345), ' … ', 40)
           FROM documents_chunk_fts WHERE documents_chunk_fts MATCH %s AND rowid = top.id
       ) END
FROM (
    SELECT m.id, m.score, row_number() OVER (ORDER BY m.score DESC, m.id) AS n
    FROM (SELECT * FROM capped {also}) m
    ORDER BY m.score DESC, m.id
    LIMIT %s
) top
JOIN documents_chunk c ON c.id = top.id
ORDER BY top.n
"""
# The passages given (primary-key look-ups), then one full-text look-up each, as for a snippet; only
# when the cap was reached (a look-up costs about 0.13 ms of CPU, and below the cap every match is ranked).
SQLITE_ALSO = """UNION
        SELECT documents_chunk_fts.rowid, -bm25(documents_chunk_fts, 1.0, {section_weight})
        FROM documents_chunk c CROSS JOIN documents_chunk_fts ON documents_chunk_fts.rowid = c.id
        WHERE (SELECT count(*) FROM capped) >= {candidates}
          AND c.id IN ({ids}) AND documents_chunk_fts MATCH %s
          AND c.workspace_id IN ({workspaces}) {documents}"""


@dataclass(frozen=True)
class SearchResult:
    document: object
    chunk_id: int
    position: int
    page: int | None
    section: str
    snippet: str
    text: str
    score: float
    # Which rankings found the passage: the full-text one, the one by meaning (a hybrid search), or both.
    by_words: bool = True
    by_meaning: bool = False

    @property
    def location(self):
        """ "page 3" or the heading path, without the document's own title (citations show it beside)."""
        from documents.models import location_label

        section = self.section
        prefix = f"{self.document.title} › "
        if section.startswith(prefix):
            section = section[len(prefix) :]
        return location_label(self.page, section)

    @property
    def url(self):
        from documents.models import chunk_url

        return chunk_url(self.document.workspace.slug, self.document.pk, self.chunk_id)


def search(user, query, *, workspace=None, document_ids=None, limit=10):
    """Passages matching the query in the user's workspaces (or the one given)."""
    if workspace is not None:
        check(user, "search", workspace)
        ids = [getattr(workspace, "pk", workspace)]
    else:
        ids = workspace_ids(user)
    return _search(ids, query, document_ids, limit)


def search_workspace(workspace, query, *, document_ids=None, limit=10, vector=None, vector_model="", candidates=0):
    """Passages matching the query in one workspace; the caller has checked permissions."""
    return _search([getattr(workspace, "pk", workspace)], query, document_ids, limit, vector, vector_model, candidates)


# Reciprocal rank fusion: a passage's score is the sum of 1 / (RRF_K + rank) over the rankings.
# A small k lets the top of each ranking count: a passage that one ranking puts first (the only one
# naming "board", or the nearest by meaning) is not outranked by passages both rankings put halfway
# down, as with the usual k = 60. Measured on the answer-quality sets of bench/README.md: every k from
# 2 to 5 retrieves the answer for all of their questions (60 misses three); 2 cites best.
RRF_K = 2
# Each ranking contributes this many candidates per wanted result (at least HYBRID_MIN_CANDIDATES).
HYBRID_DEPTH = 4
HYBRID_MIN_CANDIDATES = 20
# A passage found by meaning alone must be at least this similar to the question (cosine):
# the nearest passages of a small collection are often about something else entirely.
MIN_SIMILARITY = 0.25


def fuse(*rankings, limit):
    """Rows of several rankings (each best first, id in column 0) in reciprocal-rank-fusion order."""
    scores, rows = {}, {}
    for ranking in rankings:
        for rank, row in enumerate(ranking):
            scores[row[0]] = scores.get(row[0], 0.0) + 1.0 / (RRF_K + rank + 1)
            rows.setdefault(row[0], row)
    order = sorted(scores, key=lambda pk: (-scores[pk], pk))[:limit]
    return [(rows[pk], scores[pk]) for pk in order]


def _search(workspace_ids_, query, document_ids, limit, vector=None, vector_model="", candidates=0):
    from documents import vectors
    from documents.models import Document

    query = (query or "").strip()[:500]
    limit = max(1, min(int(limit), MAX_LIMIT))
    if not (query or vector is not None) or not workspace_ids_ or (document_ids is not None and not list(document_ids)):
        return []
    document_ids = None if document_ids is None else [int(pk) for pk in document_ids]
    hybrid = vector is not None and vector_model
    kept = max(limit, min(int(candidates or 0), MAX_LIMIT))
    depth = max(limit * HYBRID_DEPTH, HYBRID_MIN_CANDIDATES) if hybrid else kept
    rows, near, by_words, by_meaning = [], [], None, set()
    if hybrid:
        near = vectors.nearest(workspace_ids_, vector, vector_model, document_ids, depth)
    if query:
        also = [row[0] for row in near]  # the nearest passages that hold the words are ranked by words too
        rows = _run(lexical_sql(workspace_ids_, query, document_ids, depth, snippets=limit, also=also))
    if hybrid:
        near = [row for row in near if 1.0 - float(row[6]) >= MIN_SIMILARITY]
        by_words, by_meaning = {row[0] for row in rows}, {row[0] for row in near}
        snippets = {row[0]: row[7] for row in rows}
        rows = [
            (*row[:6], score, snippets.get(row[0]) or _plain_snippet(row[5]))
            for row, score in fuse(rows, near, limit=kept)
        ]
    if not rows:
        return []
    documents = Document.objects.select_related("workspace").in_bulk({row[1] for row in rows})
    results = []
    for chunk_id, document_id, position, page, section, text, score, snippet in rows:
        document = documents.get(document_id)
        if document is None:  # deleted between the two queries
            continue
        results.append(
            SearchResult(
                document=document,
                chunk_id=chunk_id,
                position=position,
                page=page,
                section=section,
                snippet=render_snippet(text, section, snippet),
                text=text,
                score=float(score),
                by_words=by_words is None or chunk_id in by_words,
                by_meaning=chunk_id in by_meaning,
            )
        )
    return results


def lexical_sql(workspace_ids_, query, document_ids, limit, snippets=None, connection=None, also=()):
    """(sql, params) of the full-text ranking for this database, or None when the query has no word.

    The first `snippets` rows (all by default) come with a highlighted snippet, the others with None.
    The passages `also` (ids: the nearest in meaning of a hybrid search) are ranked whenever they
    match, beyond the RANK_CANDIDATES matches that a very common word's search ranks.
    """
    connection = connection or default_connection
    snippets = limit if snippets is None else snippets
    also = [int(pk) for pk in also]
    if connection.vendor == "postgresql":
        return _postgres_sql(workspace_ids_, query, document_ids, limit, snippets, also)
    return _sqlite_sql(workspace_ids_, query, document_ids, limit, snippets, also)


def _run(query):
    if query is None:
        return []
    with default_connection.cursor() as cursor:
        cursor.execute(*query)
        return cursor.fetchall()


def _postgres_sql(workspace_ids_, query, document_ids, limit, snippets, also):
    ids = list(workspace_ids_)
    # One workspace: `=` with the column's type, which the (workspace_id, search_vector) index serves;
    # a GIN index cannot take `= ANY(array)`, so several workspaces use the full-text index alone.
    workspaces = "c.workspace_id = %s::bigint" if len(ids) == 1 else "c.workspace_id = ANY(%s)"
    scope = [ids[0] if len(ids) == 1 else ids]
    documents = ""
    if document_ids is not None:
        documents = "AND c.document_id = ANY(%s)"
        scope.append(document_ids)
    params = [query, snippets, HEADLINE_OPTIONS, query, *scope]
    near = ""
    if also:
        near = POSTGRES_ALSO.format(workspaces=workspaces, documents=documents)
        params += [also, query, *scope]
    params.append(limit)
    sql = POSTGRES_QUERY.format(workspaces=workspaces, documents=documents, candidates=int(RANK_CANDIDATES), also=near)
    return sql, params


def _sqlite_sql(workspace_ids_, query, document_ids, limit, snippets, also):
    match = fts5_query(query)
    if not match:
        return None
    scope = list(workspace_ids_)
    documents = ""
    if document_ids is not None:
        documents = "AND c.document_id IN ({})".format(", ".join(["%s"] * len(document_ids)))
        scope += document_ids
    params = [match, *scope, snippets, match]
    marks = ", ".join(["%s"] * len(workspace_ids_))
    near = ""
    if also:
        ids = ", ".join(["%s"] * len(also))
        near = SQLITE_ALSO.format(
            workspaces=marks,
            documents=documents,
            ids=ids,
            candidates=int(RANK_CANDIDATES),
            section_weight=float(SECTION_WEIGHT),
        )
        params += [*also, match, *scope]
    params.append(limit)
    sql = SQLITE_QUERY.format(
        workspaces=marks,
        documents=documents,
        candidates=int(RANK_CANDIDATES),
        also=near,
        section_weight=float(SECTION_WEIGHT),
    )
    return sql, params


TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
WORD = re.compile(r"\w+")


def fts5_query(query):
    """Web-search syntax as an FTS5 query: every term quoted, so nothing the user types is an operator."""
    positives, negatives = [], []
    pending_or = False
    for match in TOKEN.finditer(query):
        negate, phrase, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.lower() == "or":
            pending_or = bool(positives)
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negate, bare = "-", bare[1:]
        words = WORD.findall(phrase if phrase is not None else bare)
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        if negate:
            negatives.append(term)
        elif pending_or:
            positives[-1].append(term)
        else:
            positives.append([term])
        pending_or = False
    if not positives:
        return ""
    groups = [group[0] if len(group) == 1 else "(" + " OR ".join(group) + ")" for group in positives]
    expression = " AND ".join(groups)
    for term in negatives:
        expression = f"({expression}) NOT {term}"
    return expression


def _plain_snippet(text, words=40):
    """The start of a passage found by meaning alone (no matched words to mark)."""
    parts = (text or "").split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def highlight(snippet):
    """The backend's snippet as safe HTML: everything escaped, the match markers turned into <mark>."""
    text = " ".join((snippet or "").split())
    text = escape(text).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
    return mark_safe(text)  # noqa: S308 - escaped above; only our own markers become tags


SNIPPET_WORDS = 40
SNIPPET_LEAD = 8  # words shown before the first match
MARKED = re.compile(f"{MARK_START}([^{MARK_START}{MARK_END}]*){MARK_END}")
MD_HEADING = re.compile(r"^#{1,6}[ \t]+")
MD_BULLET = re.compile(r"^[-*+•][ \t]+")
MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]+)\]\([^)\s]*\)")
MD_URL_AFTER_LINK = re.compile(
    r" \((?:https?|mailto):[^)\s]*\)"
)  # "guide (https://…)", as the Markdown reader writes a link
MD_EMPHASIS = re.compile(r"\*\*|__|`+")
ESCAPED_WORD = re.compile(r"&(?:amp|lt|gt);|(\w+)")


def plain_text(text, section=""):
    """A passage as a reader sees it on one line: no heading line (the section shows it), no Markdown marks,
    table rows as their cells ("Lisbon · 180 euros") and no table rules."""
    from documents.chunking import TABLE_RULE

    lines = (text or "").splitlines()
    heading = section.rsplit("›", 1)[-1].strip()
    if heading and lines and " ".join(lines[0].split()) == " ".join(heading.split()):
        lines = lines[1:]
    out = []
    for line in lines:
        line = line.strip()
        if len(line) > 2000:  # a huge line is shown as it is, never run through the patterns
            out.append(line)
            continue
        if not line or TABLE_RULE.match(line):
            continue
        if line.startswith("|") or " | " in line:
            line = " · ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
        line = MD_BULLET.sub("", MD_HEADING.sub("", line))
        line = MD_URL_AFTER_LINK.sub("", MD_LINK.sub(r"\1", MD_IMAGE.sub(r"\1", line)))
        out.append(MD_EMPHASIS.sub("", line))
    return " ".join(" ".join(out).split())


def render_snippet(text, section, snippet):
    """The snippet of a passage as safe HTML: its plain text (see plain_text) around the first matched word,
    the words the backend marked in its own snippet marked again, everything else escaped."""
    matched = {m.strip().casefold() for m in MARKED.findall(snippet or "") if m.strip()}
    words = plain_text(text, section).split()
    if not words:
        return highlight(snippet)

    first = 0
    if matched:
        first = next((i for i, word in enumerate(words) if any(p.casefold() in matched for p in WORD.findall(word))), 0)
    start = max(0, first - SNIPPET_LEAD)
    shown = html.escape(" ".join(words[start : start + SNIPPET_WORDS]), quote=False)

    def mark(match):  # an entity of the escaping ("&amp;") is left whole
        word = match.group(1)
        return f"<mark>{word}</mark>" if word is not None and word.casefold() in matched else match.group(0)

    out = ESCAPED_WORD.sub(mark, shown) if matched else shown
    if start > 0:
        out = "… " + out
    if start + SNIPPET_WORDS < len(words):
        out += " …"
    return mark_safe(out)  # noqa: S308 - escaped above; only <mark> is ours


def install(schema_editor):
    """Create the search index for the database in use (migration 0002, `reindex --rebuild-index`)."""
    statements = {"sqlite": SQLITE_INSTALL, "postgresql": POSTGRES_INSTALL}.get(schema_editor.connection.vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


def install_workspace_index(schema_editor):
    """The one-workspace search index (migration 0004); without the btree_gin extension, search works without it."""
    if schema_editor.connection.vendor != "postgresql":
        return
    from django.db import transaction

    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            for statement in POSTGRES_WORKSPACE_INDEX:
                schema_editor.execute(statement)
    except Exception as exc:  # no privilege to create the extension: a slower plan, never an error
        import logging

        logging.getLogger(__name__).warning("search: no one-workspace index (btree_gin unavailable: %s)", exc)


def uninstall_workspace_index(schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS documents_chunk_ws_search")


def uninstall(schema_editor):
    statements = {"sqlite": SQLITE_UNINSTALL, "postgresql": POSTGRES_UNINSTALL}.get(schema_editor.connection.vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


def install_side_table(schema_editor):
    """Migration 0006: the tsvector moves from a generated column of documents_chunk to documents_chunk_lexemes.

    The side table is filled from the existing column (no re-parsing), its indexes are built after the
    fill, then the column and its indexes go. A no-op on SQLite and on a database that has the table already.
    """
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('documents_chunk') "
            "AND attname = 'search_vector' AND NOT attisdropped"
        )
        inline = cursor.fetchone() is not None
    if inline:  # the names move to the side table's indexes
        schema_editor.execute("DROP INDEX IF EXISTS documents_chunk_ws_search")
        schema_editor.execute("DROP INDEX IF EXISTS documents_chunk_search")
    index = POSTGRES_INSTALL[-1]
    for statement in POSTGRES_INSTALL[:-1]:
        schema_editor.execute(statement)
    source = "search_vector" if inline else POSTGRES_LEXEMES.format(config=SEARCH_CONFIG, row="")
    schema_editor.execute(
        "INSERT INTO documents_chunk_lexemes (chunk_id, workspace_id, document_id, search_vector) "
        f"SELECT id, workspace_id, document_id, {source} FROM documents_chunk ON CONFLICT (chunk_id) DO NOTHING"
    )
    schema_editor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    schema_editor.execute(index)
    install_workspace_index(schema_editor)
    if inline:
        schema_editor.execute("ALTER TABLE documents_chunk DROP COLUMN search_vector")
    schema_editor.execute("ANALYZE documents_chunk_lexemes")


def uninstall_side_table(schema_editor):
    """Back to the generated column (migration 0006 reversed)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in POSTGRES_UNINSTALL + POSTGRES_INLINE:
        schema_editor.execute(statement)


def rebuild(using=None):
    """Recreate anything missing of the index and rebuild it from documents_chunk (`reindex --rebuild-index`)."""
    from django.db import connections

    conn = connections[using or "default"]
    statements = {"sqlite": SQLITE_INSTALL, "postgresql": POSTGRES_INSTALL}.get(conn.vendor, [])
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        if conn.vendor == "sqlite":
            cursor.execute("INSERT INTO documents_chunk_fts(documents_chunk_fts) VALUES ('rebuild')")
        elif conn.vendor == "postgresql":
            cursor.execute(
                "INSERT INTO documents_chunk_lexemes (chunk_id, workspace_id, document_id, search_vector) "
                f"SELECT id, workspace_id, document_id, {POSTGRES_LEXEMES.format(config=SEARCH_CONFIG, row='')} "
                "FROM documents_chunk ON CONFLICT (chunk_id) DO UPDATE SET workspace_id = EXCLUDED.workspace_id, "
                "document_id = EXCLUDED.document_id, search_vector = EXCLUDED.search_vector"
            )
            cursor.execute(
                "DELETE FROM documents_chunk_lexemes l "
                "WHERE NOT EXISTS (SELECT 1 FROM documents_chunk c WHERE c.id = l.chunk_id)"
            )
            cursor.execute("REINDEX INDEX documents_chunk_search")


def index_sections(schema_editor):
    """Migration 0007: the heading path is searched with the text (SQLite: a second FTS5 column; PostgreSQL:
    the trigger's tsvector). Existing passages are indexed again; a no-op where the index has it already."""
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'documents_chunk_fts'")
            row = cursor.fetchone()
        if row and "section" in row[0]:
            return
        for statement in SQLITE_UNINSTALL + SQLITE_INSTALL:
            schema_editor.execute(statement)
        schema_editor.execute("INSERT INTO documents_chunk_fts(documents_chunk_fts) VALUES ('rebuild')")
    elif vendor == "postgresql":
        for statement in POSTGRES_INSTALL[:-1]:  # the trigger's function and the trigger (the index stays)
            schema_editor.execute(statement)
        schema_editor.execute(
            f"UPDATE documents_chunk_lexemes l SET search_vector = {POSTGRES_LEXEMES.format(config=SEARCH_CONFIG, row='c.')} "
            "FROM documents_chunk c WHERE c.id = l.chunk_id AND c.section <> ''"
        )


def _search_gin_indexes(schema_editor):
    """The full-text GIN indexes this PostgreSQL database has (the one-workspace one needs btree_gin)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL",
            [list(SEARCH_GIN_INDEXES)],
        )
        return sorted(row[0] for row in cursor.fetchall())


def bound_pending_lists(schema_editor):
    """Migration 0008: existing search indexes get the small pending list (GIN_PENDING_KB), and what is
    pending now is merged into the index. A no-op on SQLite and for an index that does not exist."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _search_gin_indexes(schema_editor):
        schema_editor.execute(f"ALTER INDEX {name} SET (gin_pending_list_limit = {int(GIN_PENDING_KB)})")
        schema_editor.execute(f"SELECT gin_clean_pending_list('{name}'::regclass)")


def unbound_pending_lists(schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in _search_gin_indexes(schema_editor):
            schema_editor.execute(f"ALTER INDEX {name} RESET (gin_pending_list_limit)")
