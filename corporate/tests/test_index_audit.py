"""Index audit on PostgreSQL: every list, search and report query of the pages uses an index.

Seeds tables large enough for the planner to prefer an index (10,000
documents in 20 workspaces, 30,000 passages, 10,000 conversations, 32,000
messages, one conversation of 400, 40,000 usage records), ANALYZEs them,
opens every page a member uses and the admin's lists of those tables with
the real views, and runs EXPLAIN over each query the pages made: none may read documents, passages, conversations or messages (or usage
rows) with a sequential scan. Skipped on SQLite, whose planner is another.
"""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db

AUDITED = {
    "documents_document",
    "documents_chunk",
    "assistants_conversation",
    "assistants_message",
    "llmgateway_usagerecord",
}
WORKSPACES = 20


def replicate(table, template_id, count, overrides, source=None):
    """Insert `count` copies of row `template_id`, with some columns computed from `i` (1..count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_generated = 'NEVER' "
            "AND column_name <> 'id'",
            [table],
        )
        columns = [row[0] for row in cursor.fetchall()]
        values = ", ".join(overrides.get(c, 't."' + c + '"') for c in columns)
        names = ", ".join('"' + c + '"' for c in columns)
        rows = source or f"generate_series(1, {count}) i"
        values, rows = values.replace("%", "%%"), rows.replace("%", "%%")
        sql = f"INSERT INTO {table} ({names}) SELECT {values} FROM {table} t, {rows} WHERE t.id = %s"
        cursor.execute(sql, [template_id])


@pytest.fixture
def seeded(make_user, django_capture_on_commit_callbacks):
    if connection.vendor != "postgresql":
        pytest.skip("the index audit runs on PostgreSQL (DATABASE_URL)")
    from assistants.models import Assistant, Conversation, Message
    from documents.models import Chunk, Document
    from workspaces.models import Membership, Workspace

    member = make_user("audit@example.com")
    others = [make_user(f"user{i}@example.com") for i in range(20)]
    spaces = [Workspace.objects.create(name=f"Team {i:02}", slug=f"team-{i:02}") for i in range(WORKSPACES)]
    home = spaces[0]
    Membership.objects.create(workspace=home, user=member, role="admin")
    Membership.objects.bulk_create(Membership(workspace=w, user=u, role="member") for w in spaces for u in others[:3])
    ws_ids = "ARRAY[" + ",".join(str(w.pk) for w in spaces) + "]"
    doc = Document.objects.create(
        workspace=home, title="Template", original_name="t.md", kind="markdown", size=1, sha256="0" * 64, status="ready"
    )
    replicate(
        "documents_document",
        doc.pk,
        10_000,
        {
            "workspace_id": f"({ws_ids})[1 + i % {WORKSPACES}]",
            "title": "'Document ' || i",
            "sha256": "md5(i::text) || md5(i::text)",
            "created_at": "now() - i * interval '1 minute'",
            "updated_at": "now() - i * interval '1 minute'",
            "status": "(ARRAY['ready','ready','ready','failed','queued'])[1 + i % 5]",
            "kind": "(ARRAY['pdf','docx','text','markdown'])[1 + i % 4]",
        },
    )
    chunk = Chunk.objects.create(document=doc, workspace=home, position=0, text="x", start=0, end=1, token_estimate=1)
    words = "(ARRAY['travel','salary','laptop','holiday','pension','parking','badge','printer'])"
    replicate(
        "documents_chunk",
        chunk.pk,
        30_000,
        {
            "document_id": "d.id",
            "workspace_id": "d.workspace_id",
            "position": "p",
            "text": f"'Passage ' || d.id || ' on ' || {words}[1 + (d.id + p) % 8] || ' rule ' || ((d.id * 7 + p) % 997)",
        },
        source="(SELECT id, workspace_id FROM documents_document WHERE title <> 'Template') d, generate_series(0, 2) p",
    )
    assistants = [Assistant.objects.create(workspace=w, name=f"Helper {w.slug}") for w in spaces]
    first_assistant = assistants[0].pk
    conversation = Conversation.objects.create(assistant=assistants[0], user=member, title="A long conversation")
    user_ids = "ARRAY[" + ",".join(str(u.pk) for u in [member, *others]) + "]"
    replicate(
        "assistants_conversation",
        conversation.pk,
        10_000,
        {
            "assistant_id": f"{first_assistant} + i % {WORKSPACES}",
            "user_id": f"({user_ids})[1 + i % {len(others) + 1}]",
            "title": "'Conversation ' || i",
            "updated_at": "now() - i * interval '1 minute'",
        },
    )
    message = Message.objects.create(conversation=conversation, role="user", content="Hello")
    replicate(
        "assistants_message",
        message.pk,
        30_000,
        {"conversation_id": "c.id", "content": "'Message ' || c.id || '/' || p", "created_at": "c.updated_at"},
        source="(SELECT id, updated_at FROM assistants_conversation) c, generate_series(1, 3) p",
    )
    replicate(
        "assistants_message",
        message.pk,
        400,
        {"content": "'Turn ' || i", "role": "(ARRAY['user','assistant'])[1 + i % 2]"},
    )
    from django.utils import timezone

    from llmgateway.models import UsageRecord

    record = UsageRecord.objects.create(
        request_id="00000000-0000-0000-0000-000000000001",
        workspace=home,
        user=member,
        model="offline",
        cache="miss",
        created_at=timezone.now(),
    )
    replicate(
        "llmgateway_usagerecord",
        record.pk,
        40_000,
        {
            "request_id": "md5('audit' || i)::uuid",
            "workspace_id": f"({ws_ids})[1 + i % {WORKSPACES}]",
            "user_id": f"({user_ids})[1 + i % {len(others) + 1}]",
            "cache": "(ARRAY['hit','miss','coalesced'])[1 + i % 3]",
            "created_at": "now() - i * interval '3 minutes'",
        },
    )
    with connection.cursor() as cursor:
        for table in AUDITED | {"workspaces_workspace", "workspaces_membership", "assistants_assistant"}:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0]:
                cursor.execute(f"ANALYZE {table}")
    staff = make_user("staff@example.com", is_staff=True, is_superuser=True)
    return {
        "member": member,
        "staff": staff,
        "home": home,
        "document": doc,
        "assistant": assistants[0],
        "conversation": conversation,
    }


def seq_scans(plan):
    """(relation, node) for every sequential scan on an audited table in an EXPLAIN (FORMAT JSON) plan."""
    found = []

    def walk(node):
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in AUDITED:
            found.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def index_names(plan):
    names = set()

    def walk(node):
        if node.get("Index Name"):
            names.add(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return names


def pages(seeded):
    home, doc, assistant, conversation = (seeded[k] for k in ("home", "document", "assistant", "conversation"))
    slug = home.slug
    return [
        reverse("dashboard"),
        reverse("workspaces:list"),
        reverse("workspaces:detail", args=[slug]),
        reverse("documents:list", args=[slug]),
        reverse("documents:list", args=[slug]) + "?status=failed",
        reverse("documents:list", args=[slug]) + "?kind=pdf",
        reverse("documents:list", args=[slug]) + "?page=3",
        reverse("documents:detail", args=[slug, doc.pk]),
        reverse("documents:search", args=[slug]) + "?q=salary+rule",
        reverse("assistants:list", args=[slug]),
        reverse("assistants:usage", args=[slug]),
        reverse("assistants:chat", args=[slug, assistant.pk]),
        reverse("assistants:conversation", args=[slug, assistant.pk, conversation.pk]),
        # the messages before the latest ones of the long conversation
        reverse("assistants:conversation", args=[slug, assistant.pk, conversation.pk])
        + f"?before={conversation.messages.order_by('-pk').values_list('pk', flat=True)[100]}",
        reverse("llmgateway:keys", args=[slug]),
        reverse("llmgateway:cache", args=[slug]),
        reverse("llmgateway:usage", args=[slug]),
    ]


def admin_pages(seeded):
    """The admin's lists of the large tables, as staff open them."""
    return [
        "/admin/corporate/user/",
        "/admin/documents/document/",
        f"/admin/documents/document/?workspace__id__exact={seeded['home'].pk}",
        "/admin/documents/chunk/",
        "/admin/assistants/conversation/",
        "/admin/assistants/message/",
        "/admin/llmgateway/usagerecord/",
    ]


# The admin's row estimate (corporate/admin_lists.py) counts a table only while it holds fewer than
# 10,000 rows: its plan shows that count, which never runs over the tables audited here.
ESTIMATE = "SELECT CASE WHEN c.reltuples"


def test_every_page_query_uses_an_index(seeded, client_for):
    member, staff = client_for(seeded["member"]), client_for(seeded["staff"])
    problems, explained, search_indexes = [], 0, set()
    for client, url in [(member, url) for url in pages(seeded)] + [(staff, url) for url in admin_pages(seeded)]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")) or not any(t in sql for t in AUDITED):
                continue
            if sql.startswith(ESTIMATE):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            explained += 1
            if "/search/" in url:
                search_indexes.update(index_names(plan))
            for table in seq_scans(plan):
                problems.append(f"{url}: sequential scan on {table}:\n  {sql[:400]}")
    assert explained >= 25
    assert not problems, "\n".join(problems)
    # One workspace's search reads its matches from the (workspace_id, search_vector) index.
    assert "documents_chunk_ws_search" in search_indexes, search_indexes
