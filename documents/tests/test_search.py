import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from documents.search import fts5_query, search, search_workspace
from documents.tests.conftest import MARKDOWN, pdf_bytes

pytestmark = pytest.mark.django_db


def test_results_name_document_page_snippet_and_link(ingest, viewer, workspace):
    document = ingest("handbook.pdf", pdf_bytes())
    results = search(viewer, "vacation days", workspace=workspace)
    assert len(results) == 1
    result = results[0]
    assert result.document == document and result.document.title == "Handbook"
    assert result.page == 1 and result.location == "page 1"
    assert "<mark>vacation</mark>" in result.snippet.lower()
    assert "27 vacation days" in result.text
    assert result.score > 0
    assert result.url == f"/documents/acme/{document.pk}/?chunk={result.chunk_id}#chunk-{result.chunk_id}"


def test_snippets_are_html_safe(ingest, viewer):
    ingest("xss.txt", b"The <script>alert(1)</script> budget is <b>approved</b> for travel.")
    (result,) = search(viewer, "budget")
    # SQLite escapes the tags, PostgreSQL's headline leaves them out; neither lets one through.
    assert "<script>" not in result.snippet and "<b>" not in result.snippet
    assert "<mark>budget</mark>" in result.snippet


def test_only_my_workspaces(ingest, viewer, outsider, workspace, other_workspace):
    ingest("handbook.pdf", pdf_bytes())
    ingest("secret.txt", b"The vacation plan of Globex is secret.", ws=other_workspace, user=outsider)
    mine = search(viewer, "vacation")
    assert [r.document.workspace.slug for r in mine] == ["acme"]
    assert [r.document.workspace.slug for r in search(outsider, "vacation")] == ["globex"]
    with pytest.raises(Http404):
        search(viewer, "vacation", workspace=other_workspace)


def test_archived_workspace_is_still_searchable_but_unknown_role_is_refused(ingest, viewer, workspace):
    ingest("handbook.pdf", pdf_bytes())
    workspace.archived = True
    workspace.save()
    assert search(viewer, "vacation", workspace=workspace)
    from workspaces.models import Membership

    Membership.objects.filter(user=viewer).delete()
    from workspaces.permissions import forget

    forget(viewer)
    with pytest.raises((Http404, PermissionDenied)):
        search(viewer, "vacation", workspace=workspace)


def test_document_filter_limit_and_syntax(ingest, workspace):
    handbook = ingest("handbook.pdf", pdf_bytes())
    faq = ingest("faq.md", MARKDOWN.encode())
    assert {r.document.pk for r in search_workspace(workspace, "staff")} == {handbook.pk, faq.pk}
    assert {r.document.pk for r in search_workspace(workspace, "staff", document_ids=[faq.pk])} == {faq.pk}
    assert search_workspace(workspace, "staff", document_ids=[]) == []
    assert len(search_workspace(workspace, "staff", limit=1)) == 1
    assert search_workspace(workspace, '"vacation days"')
    assert not search_workspace(workspace, '"days vacation"')
    assert {r.document.pk for r in search_workspace(workspace, "staff -vacation")} == {faq.pk}
    assert {r.page for r in search_workspace(workspace, "laptop or meals")} == {2, 3}
    # Stemming: "reimburse" finds "reimbursed".
    assert search_workspace(workspace, "reimburse")[0].page == 2
    for nasty in ['"', "AND OR NOT", "-", "((", "NEAR(a b)", "*", "col:x", "'; drop table x; --", ""]:
        search_workspace(workspace, nasty)  # never an error


def test_fts5_query_quotes_everything():
    assert fts5_query("vacation days") == '"vacation" AND "days"'
    assert fts5_query('"exact phrase" -skip') == '("exact phrase") NOT "skip"'
    assert fts5_query("a or b c") == '("a" OR "b") AND "c"'
    assert fts5_query("e-mail") == '"e mail"'
    assert fts5_query("-only") == ""


def test_index_follows_reprocess_and_delete(ingest, workspace, run_tasks):
    from documents import ingestion

    document = ingest("handbook.pdf", pdf_bytes())
    before = {r.chunk_id for r in search_workspace(workspace, "vacation")}
    with run_tasks():
        ingestion.reprocess(document)
    after = {r.chunk_id for r in search_workspace(workspace, "vacation")}
    assert after and not (before & after)  # old entries gone, new ones found
    ingestion.delete_document(document)
    assert search_workspace(workspace, "vacation") == []


def test_search_costs_two_queries(ingest, workspace, django_assert_num_queries):
    ingest("handbook.pdf", pdf_bytes())
    ingest("faq.md", MARKDOWN.encode())
    # the ranked passages with snippets; their documents with workspaces
    with django_assert_num_queries(2):
        results = search_workspace(workspace, "staff")
        assert [r.document.workspace.slug for r in results] == ["acme", "acme"]


def _postgres_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL keeps the full-text index in a side table")
    return connection


def _lexemes(connection):
    """chunk_id -> (workspace_id, document_id, tsvector) of documents_chunk_lexemes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT chunk_id, workspace_id, document_id, search_vector::text FROM documents_chunk_lexemes")
        return {row[0]: row[1:] for row in cursor.fetchall()}


def test_postgres_side_table_follows_inserts_updates_deletes_and_truncates(ingest, workspace):
    from documents.models import Chunk

    connection = _postgres_only()
    document = ingest("faq.md", MARKDOWN.encode())
    chunks = list(Chunk.objects.filter(document=document))
    rows = _lexemes(connection)
    assert set(rows) == {c.pk for c in chunks}
    assert all(rows[c.pk][:2] == (c.workspace_id, c.document_id) for c in chunks)
    assert not search_workspace(workspace, "zebrafish")
    chunk = chunks[0]
    chunk.text = "Zebrafish tanks are cleaned on Fridays."
    chunk.save()
    assert [r.chunk_id for r in search_workspace(workspace, "zebrafish")] == [chunk.pk]
    assert "zebrafish" in _lexemes(connection)[chunk.pk][2]
    chunk.delete()
    assert chunk.pk not in _lexemes(connection) and not search_workspace(workspace, "zebrafish")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's pending foreign-key checks first
        cursor.execute("TRUNCATE documents_chunk CASCADE")
    assert _lexemes(connection) == {}


def test_postgres_ranked_tsvector_stays_in_the_row(ingest):
    connection = _postgres_only()
    ingest("faq.md", MARKDOWN.encode())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'documents_chunk_lexemes'::regclass "
            "AND attname = 'search_vector'"
        )
        assert cursor.fetchone()[0] == "m"  # compressed in place before any move out of line
        cursor.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = 'documents_chunk'::regclass "
            "AND attname = 'search_vector' AND NOT attisdropped"
        )
        assert cursor.fetchone() is None  # the passage table no longer carries it


def test_postgres_migration_moves_the_former_column_to_the_side_table(ingest, workspace):
    from django.db import connection as default

    from documents import search as search_module
    from documents.models import Chunk

    connection = _postgres_only()
    ingest("handbook.pdf", pdf_bytes())
    expected = [(r.chunk_id, r.score) for r in search_workspace(workspace, "vacation days")]
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's pending foreign-key checks first
    with default.schema_editor(atomic=False) as editor:
        search_module.uninstall_side_table(editor)  # the layout of migrations 0002-0005
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM documents_chunk WHERE search_vector @@ to_tsquery('vacation')")
            assert cursor.fetchone()[0] == len(expected)
        search_module.install_side_table(editor)
    assert [(r.chunk_id, r.score) for r in search_workspace(workspace, "vacation days")] == expected
    assert set(_lexemes(connection)) == set(Chunk.objects.values_list("pk", flat=True))


def test_passages_given_beside_the_cap_are_ranked_when_they_hold_the_words(ingest, workspace, monkeypatch):
    from django.db import connection

    from documents import search as search_module
    from documents.models import Chunk

    ingest("faq.md", MARKDOWN.encode())
    ingest("handbook.pdf", pdf_bytes())
    holding = set(Chunk.objects.filter(text__icontains="staff").values_list("pk", flat=True))
    other = Chunk.objects.exclude(pk__in=holding).values_list("pk", flat=True).first()
    assert len(holding) >= 2 and other

    def ranked(also):
        with connection.cursor() as cursor:
            cursor.execute(*search_module.lexical_sql([workspace.pk], "staff", None, 10, also=also))
            return [row[0] for row in cursor.fetchall()]

    monkeypatch.setattr(search_module, "RANK_CANDIDATES", 1)
    capped = ranked(())
    assert len(capped) == 1
    beyond = sorted(holding - set(capped))
    # e.g. the nearest passages of a hybrid search: ranked by words too, each once, however common the word
    assert sorted(ranked([*beyond, capped[0]])) == sorted(holding)
    without = ranked([other])  # a given passage without the words is not ranked by words
    assert len(without) == 1 and other not in without


def test_a_passage_is_found_by_the_words_of_its_heading_path(ingest, viewer, workspace):
    from documents.models import Chunk

    text = (
        "# Governance\n\n## Steering council\n\n### Membership\n\n"
        "Five people are elected for each release cycle.\n\n## Fellows\n\nFellows are paid contractors.\n"
    )
    document = ingest("governance.md", text.encode())
    results = search(viewer, "steering", workspace=workspace)
    assert [r.section for r in results] == ["Governance › Steering council › Membership"]
    assert "Five people are elected" in results[0].text
    # A renamed section is searched by its new words (the index follows updates of the path).
    chunk = Chunk.objects.get(document=document, section="Governance › Fellows")
    chunk.section = "Governance › Paid staff"
    chunk.save(update_fields=["section"])
    assert [r.chunk_id for r in search(viewer, "staff", workspace=workspace)] == [chunk.pk]


def test_fusion_keeps_the_passage_the_words_rank_first_ahead_of_middling_passages():
    from documents import search as search_module

    def row(pk):
        return (pk, 1, 0, None, "", f"passage {pk}", 0.0, "")

    words = [row("answer")] + [row(f"m{i}") for i in range(10)]  # the answer first by its words
    meaning = [row(f"n{i}") for i in range(5)] + [row(f"m{i}") for i in range(10)]  # absent by meaning
    fused = search_module.fuse(words, meaning, limit=5)
    assert "answer" in [r[0] for r, _ in fused[:3]]


def _pending_pages(connection, index):
    """Merge the index's pending list into it; returns how many pages it held."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
        return cursor.fetchone()[0]


def _add_passages(document, start, count):
    import random

    from documents.models import Chunk

    rng = random.Random(start)
    words = [f"w{n:05d}x" for n in range(20_000)]  # distinct lexemes: each passage adds 150 index entries
    Chunk.objects.bulk_create(
        Chunk(
            document=document,
            workspace=document.workspace,
            position=start + n,
            text=" ".join(rng.sample(words, 150)),
            start=0,
            end=1000,
            token_estimate=250,
        )  # fmt: skip
        for n in range(count)
    )


def test_postgres_search_index_pending_list_stays_small_and_migration_bounds_an_old_one(ingest, workspace):
    from django.db import connection as default

    from documents import search as search_module

    connection = _postgres_only()
    document = ingest("faq.md", MARKDOWN.encode())
    index = "documents_chunk_search"
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [index])
        assert f"gin_pending_list_limit={search_module.GIN_PENDING_KB}" in cursor.fetchone()[0]
    limit_pages = search_module.GIN_PENDING_KB * 1024 // 8192
    _pending_pages(connection, index)
    _add_passages(document, 1000, 600)  # about 2 MB of index entries, inserted one passage at a time
    assert 0 < _pending_pages(connection, index) <= limit_pages + 2  # flushed as it grew: what a search reads

    with connection.cursor() as cursor:  # an index made before: the default pending list (4 MB)
        cursor.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")
    _add_passages(document, 2000, 600)
    with default.schema_editor(atomic=False) as editor:
        search_module.bound_pending_lists(editor)  # migration 0008
    assert _pending_pages(connection, index) == 0  # what was pending is in the index now
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [index])
        assert f"gin_pending_list_limit={search_module.GIN_PENDING_KB}" in cursor.fetchone()[0]
    _add_passages(document, 3000, 600)
    assert 0 < _pending_pages(connection, index) <= limit_pages + 2
    found = search_workspace(workspace, "w00042x", limit=100)
    assert found and all("w00042x" in r.text for r in found)
