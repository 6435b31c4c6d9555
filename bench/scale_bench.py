"""Every page a user opens, at a large company's volume, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scale_bench .venv/bin/python bench/scale_bench.py
    ... bench/scale_bench.py --scale 0.05        # a twentieth of the volume, for a quick run
    ... bench/scale_bench.py --reseed            # throw the seeded rows away and seed again

Seeds (once; a database that already holds the same seed is reused) 2,000
users, 200 workspaces, 20,000 documents, 1,000,000 passages, 400 assistants,
200,000 conversations with 2,000,000 messages (one of them 2,000 messages
long) and 1,000,000 usage records, generated in the database with
INSERT ... SELECT over generate_series (indexes dropped during the load and
built again after it), then VACUUM ANALYZE. The database must be empty or
hold an earlier seed of this benchmark; it is created when missing.

Then it opens every page through the real views with the whole middleware
(Django's test client, which calls the same handler as the WSGI server),
signed in as a member of three workspaces (admin of one), and prints per
page the server time p50/p95, the database time p95 and the query count that
the `Server-Timing` header reports. Each page is also opened for the same
kind of object at a small size (a newcomer's workspace with three
documents, a conversation of four messages, a filtered admin list): the
query count must be the same, whatever the volume. Pages over the targets
(database p95 >= 50 ms, server p95 >= 100 ms) or whose query count varies
are flagged. The slow-query log's top entries close the report.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")

FULL = {
    "users": 2_000,
    "workspaces": 200,
    "documents": 20_000,
    "passages": 1_000_000,
    "conversations": 200_000,
    "messages": 2_000_000,
    "usage": 1_000_000,
}
LONG_CONVERSATION = 2_000  # messages: one thousand questions and their answers
ASSISTANTS_PER_WORKSPACE = 2
DB_TARGET_MS, SERVER_TARGET_MS = 50, 100
DOMAIN = "scale.example"
MARKER = "scale_bench_seed"
BIG_TABLES = [
    "documents_document",
    "documents_chunk",
    "assistants_conversation",
    "assistants_message",
    "llmgateway_usagerecord",
]

VOCABULARY = """
travel expense policy claim receipt manager approval salary payroll bonus pension holiday leave sick parent
laptop phone printer badge parking office desk meeting room booking contract supplier invoice payment
budget forecast quarter revenue margin customer support ticket incident outage release deploy server
database backup security password access review audit training onboarding offboarding handbook benefit
insurance health dental vision relocation visa remote hybrid schedule overtime shift rota canteen lunch
wellbeing mentor promotion appraisal objective feedback goal strategy roadmap product launch marketing
campaign brand press event conference sponsor partner vendor procurement tender legal compliance privacy
retention archive record email calendar chat video licence software hardware asset inventory warehouse
shipping delivery return refund warranty quality safety fire evacuation first aid recycling energy
""".split()  # noqa: SIM905 - a paragraph reads better than a list of 120 strings


def sizes(scale):
    return {name: max(2 if name == "workspaces" else 4, round(count * scale)) for name, count in FULL.items()}


# Seeding --------------------------------------------------------------------------------------------


def replicate(cursor, table, template_id, overrides, source):
    """Copy row `template_id` of `table` once per row of `source`, with some columns computed.

    `source` is the FROM list, with its own WHERE (and ON CONFLICT DO NOTHING) when needed.
    Columns not overridden keep the template's value, so the ORM's defaults
    (and columns added later) are filled without naming them here.
    """
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_generated = 'NEVER' "
        "AND table_schema = current_schema()",
        [table],
    )
    columns = [row[0] for row in cursor.fetchall()]
    if "id" not in overrides:
        columns.remove("id")
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(overrides.get(c, f't."{c}"') for c in columns)
    rows, _, where = source.partition(" WHERE ")
    where, conflict, _ = where.partition(" ON CONFLICT DO NOTHING")
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {values} FROM {table} t, {rows} "
        f"WHERE t.id = {int(template_id)} {'AND ' + where if where else ''} {conflict}"
    )
    cursor.execute(sql)
    return cursor.rowcount


def restart_ids(cursor, table):
    """After rows with explicit ids: the next id the ORM gets is past them."""
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


def plain_indexes(cursor, table):
    """(name, definition) of the table's indexes that no constraint owns: dropped while loading."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND schemaname = current_schema() "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        [table],
    )
    return cursor.fetchall()


class Loading:
    """Drop a table's plain indexes for a bulk load and build them again afterwards (much faster)."""

    def __init__(self, cursor, table):
        self.cursor, self.table = cursor, table

    def __enter__(self):
        self.indexes = plain_indexes(self.cursor, self.table)
        for name, _ in self.indexes:
            self.cursor.execute(f'DROP INDEX "{name}"')

    def __exit__(self, *exc):
        for _, definition in self.indexes:
            self.cursor.execute(definition)


def step(label, started):
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
    return time.perf_counter()


def seeded_scale(cursor):
    cursor.execute("SELECT to_regclass(%s)", [MARKER])
    if cursor.fetchone()[0] is None:
        return None
    cursor.execute(f"SELECT scale FROM {MARKER}")
    row = cursor.fetchone()
    return row[0] if row else None


def seed(scale):
    """Fill the database with `scale` times a large company's volume."""
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError, connection, transaction

    from assistants.models import Assistant, Conversation, Message
    from documents.models import Chunk, Document
    from llmgateway.models import UsageRecord
    from workspaces.models import Membership, Workspace

    n = sizes(scale)
    User = get_user_model()
    started = begun = time.perf_counter()
    print(f"Seeding scale {scale}: " + ", ".join(f"{v:,} {k}" for k, v in n.items()), flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM corporate_user WHERE email NOT LIKE %s", [f"%@{DOMAIN}"])
        if cursor.fetchone()[0] and seeded_scale(cursor) is None:
            sys.exit(
                f"{connection.settings_dict['NAME']} holds other data: give the benchmark a database of its own "
                "(DATABASE_URL=postgres://.../scale_bench; it is created when missing)"
            )
        cursor.execute(f"DROP TABLE IF EXISTS {MARKER}")
        cursor.execute(
            "TRUNCATE corporate_user, workspaces_workspace, llmgateway_usagerecord, llmgateway_usageday, "
            "llmgateway_usagehour "
            "RESTART IDENTITY CASCADE"
        )
    started = step("emptied", started)

    with transaction.atomic(), connection.cursor() as cursor:
        # Rows are consistent by construction; no per-row foreign-key triggers during the load
        # (a superuser's setting: others load with the checks, only slower).
        try:
            with transaction.atomic():
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            print("  (not a superuser: foreign keys are checked row by row during the load)")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        reader = User.objects.create_user(f"reader@{DOMAIN}", "scale-bench-password", full_name="Rita Reader")
        User.objects.create_user(f"newcomer@{DOMAIN}", "scale-bench-password", full_name="Nina Newcomer")
        User.objects.create_superuser(f"admin@{DOMAIN}", "scale-bench-password", full_name="Alex Admin")
        replicate(
            cursor,
            "corporate_user",
            reader.pk,
            {
                "email": f"'person' || i || '@{DOMAIN}'",
                "full_name": "'Person ' || i",
                "date_joined": "now() - i * interval '1 hour'",
                "last_login": "now() - i * interval '1 minute'",
            },
            f"generate_series(1, {n['users'] - 3}) i",
        )
        home = Workspace.objects.create(name="Team 0000", slug="team-0000", description="The biggest team.")
        replicate(
            cursor,
            "workspaces_workspace",
            home.pk,
            {"name": "'Team ' || lpad(i::text, 4, '0')", "slug": "'team-' || lpad(i::text, 4, '0')"},
            f"generate_series(1, {n['workspaces'] - 1}) i",
        )
        small = Workspace.objects.create(name="New team", slug="new-team", description="Just started.")
        # Numbered rows for the joins below: seed_ws (n from 0), seed_user (n from 0, bench users apart).
        cursor.execute(
            "CREATE TEMP TABLE seed_ws ON COMMIT DROP AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id "
            "FROM workspaces_workspace WHERE slug LIKE 'team-%'"
        )
        cursor.execute(
            "CREATE TEMP TABLE seed_user ON COMMIT DROP AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id "
            "FROM corporate_user WHERE email LIKE 'person%'"
        )
        for table in ("seed_ws", "seed_user"):
            cursor.execute(f"CREATE UNIQUE INDEX ON {table} (n)")
        W, U = n["workspaces"], n["users"] - 3
        membership = Membership.objects.create(workspace=home, user=reader, role="admin")
        # The reader: admin of the biggest team, member of two more; the newcomer: two new teams.
        Membership.objects.bulk_create(
            [
                Membership(workspace_id=ws, user=reader, role="member")
                for ws in Workspace.objects.filter(slug__in=["team-0001", "team-0002"]).values_list("pk", flat=True)
            ]
            + [
                Membership(workspace=ws, user=User.objects.get(email=f"newcomer@{DOMAIN}"), role="admin")
                for ws in (small, Workspace.objects.create(name="Newer team", slug="newer-team"))
            ]
        )
        # Everyone else: three workspaces each, an owner now and then.
        replicate(
            cursor,
            "workspaces_membership",
            membership.pk,
            {
                "user_id": "u.id",
                "workspace_id": "w.id",
                "role": "CASE WHEN u.n % 40 = 0 AND k = 0 THEN 'owner' WHEN u.n % 10 = 0 THEN 'admin' "
                "ELSE 'member' END",
                "joined_at": "now() - u.n * interval '1 hour'",
            },
            f"seed_user u, generate_series(0, 2) k, seed_ws w WHERE w.n = (u.n + k * 67) % {W} ON CONFLICT DO NOTHING",
        )
        started = step(f"users, workspaces, memberships ({U + 3:,} / {W + 1:,})", started)

        per_doc = max(1, n["passages"] // n["documents"])
        template = Document.objects.create(
            workspace=home,
            title="Travel policy 2026",
            original_name="travel-policy.md",
            file="documents/seed/travel-policy.md",
            kind="markdown",
            content_type="text/markdown",
            size=48_000,
            sha256="0" * 64,
            uploaded_by=reader,
            status="ready",
            page_count=12,
            chunk_count=per_doc,
            char_count=48_000,
            preview="Travel policy. Who may travel, how to book, what to claim and how.",
            version=1,
        )
        with Loading(cursor, "documents_document"):
            replicate(
                cursor,
                "documents_document",
                template.pk,
                {
                    "workspace_id": "w.id",
                    "title": "(ARRAY['Policy','Handbook','Minutes','Report','Guide','Contract'])[1 + i % 6] "
                    "|| ' ' || i",
                    "original_name": "'document-' || i || '.pdf'",
                    "sha256": "md5(i::text) || md5((-i)::text)",
                    "kind": "(ARRAY['pdf','docx','text','markdown','html','csv'])[1 + i % 6]",
                    "status": "CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'queued' ELSE 'ready' END",
                    "failure_reason": "CASE WHEN i % 50 = 0 THEN 'The file is not a valid PDF.' ELSE '' END",
                    "created_at": "now() - i * interval '13 minutes'",
                    "updated_at": "now() - i * interval '13 minutes'",
                    "processed_at": "now() - i * interval '13 minutes'",
                    "uploaded_by_id": "NULL",
                },
                f"generate_series(1, {n['documents'] - 1}) i, seed_ws w WHERE w.n = i % {W}",
            )
            cursor.execute(
                "CREATE TEMP TABLE seed_doc ON COMMIT DROP AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, "
                "id, workspace_id FROM documents_document"
            )
        started = step(f"documents ({n['documents']:,})", started)

        # Passages: three of a thousand generated phrases each (words of a business vocabulary, some much
        # more common than others), so that full-text search has common and rare words to find.
        cursor.execute("CREATE TEMP TABLE seed_phrase (n int PRIMARY KEY, text text) ON COMMIT DROP")
        phrases = []
        for p in range(1000):
            words = [VOCABULARY[(p * (k + 3) * 7 + k * k * 13) % (len(VOCABULARY) // (1 + k % 3))] for k in range(12)]
            phrases.append((p, " ".join(words).capitalize() + f" rule {p}"))
        cursor.executemany("INSERT INTO seed_phrase VALUES (%s, %s)", phrases)
        chunk = Chunk.objects.create(
            document=template,
            workspace=home,
            position=0,
            text="Travel is booked through the travel desk; expenses are claimed within 30 days.",
            section="Travel policy 2026 › Booking",
            start=0,
            end=80,
            token_estimate=20,
        )
        with Loading(cursor, "documents_chunk"):
            replicate(
                cursor,
                "documents_chunk",
                chunk.pk,
                {
                    "document_id": "d.id",
                    "workspace_id": "d.workspace_id",
                    "position": "p",
                    "text": "p1.text || '. ' || p2.text || '. ' || p3.text || '.'",
                    "page": "1 + p / 4",
                    "section": "'Part ' || (1 + p / 10)",
                    "start": "p * 400",
                    "end": "p * 400 + 400",
                    "token_estimate": "100",
                },
                f"seed_doc d, generate_series(0, {per_doc - 1}) p, seed_phrase p1, seed_phrase p2, seed_phrase p3 "
                f"WHERE NOT (d.id = {template.pk} AND p = 0) AND p1.n = (d.n * 7 + p) % 1000 "
                "AND p2.n = (d.n * 13 + p * 3 + 1) % 1000 AND p3.n = (d.n + p * 11 + 2) % 1000",
            )
        # The newcomer's team: three documents (one failed) of three passages each.
        small_docs = []
        for i, status in enumerate(["ready", "ready", "failed"]):
            document = Document.objects.create(
                workspace=small,
                title=f"Welcome {i}",
                original_name=f"welcome-{i}.md",
                file=f"documents/seed/welcome-{i}.md",
                kind="markdown",
                content_type="text/markdown",
                size=1_000,
                sha256=f"{i + 1:064d}",
                status=status,
                chunk_count=3,
            )
            small_docs.append(document)
            Chunk.objects.bulk_create(
                Chunk(
                    document=document,
                    workspace=small,
                    position=p,
                    text=f"Travel and dental cover, relocation help: welcome part {p}.",
                    start=p * 60,
                    end=p * 60 + 60,
                    token_estimate=15,
                )
                for p in range(3)
            )
        started = step(f"passages ({n['documents'] * per_doc:,})", started)

        assistant = Assistant.objects.create(
            workspace=home, name="Policy helper", description="Answers from the team's policies.", created_by=reader
        )
        replicate(
            cursor,
            "assistants_assistant",
            assistant.pk,
            {
                "workspace_id": "w.id",
                "name": "(ARRAY['Policy helper','Support desk'])[1 + k] || ' ' || w.n",
                "created_by_id": "NULL",
            },
            f"seed_ws w, generate_series(0, {ASSISTANTS_PER_WORKSPACE - 1}) k WHERE NOT (w.id = {home.pk} AND k = 0)",
        )
        cursor.execute(
            "CREATE TEMP TABLE seed_asst ON COMMIT DROP AS SELECT w.n, a.id FROM assistants_assistant a "
            "JOIN seed_ws w ON w.id = a.workspace_id"
        )
        cursor.execute("CREATE INDEX ON seed_asst (n)")
        small_assistant = Assistant.objects.create(workspace=small, name="First helper")

        long_conversation = Conversation.objects.create(
            assistant=assistant, user=reader, title="Quarterly planning, all of it"
        )
        C = n["conversations"] - 1
        replicate(
            cursor,
            "assistants_conversation",
            long_conversation.pk,
            {
                "id": "(SELECT max(id) FROM assistants_conversation) + i",
                # Every hundredth conversation is the reader's, with the biggest team's assistant.
                "assistant_id": f"CASE WHEN i % 100 = 0 THEN {assistant.pk} ELSE (SELECT min(a.id) FROM seed_asst a "
                f"WHERE a.n = (i % {U} + (i / {U}) % 3 * 67) % {W}) END",
                "user_id": f"CASE WHEN i % 100 = 0 THEN {reader.pk} ELSE (SELECT u.id FROM seed_user u "
                f"WHERE u.n = i % {U}) END",
                "title": "(ARRAY['Expenses','Holiday','Laptop','Payroll','Onboarding'])[1 + i % 5] "
                "|| ' question ' || i",
                "pinned": "i % 500 = 0",
                "created_at": "now() - i * interval '2 minutes' - interval '1 hour'",
                "updated_at": "now() - i * interval '2 minutes'",
            },
            f"generate_series(1, {C}) i",
        )
        restart_ids(cursor, "assistants_conversation")
        short_conversation = Conversation.objects.create(
            assistant=small_assistant, user=User.objects.get(email=f"newcomer@{DOMAIN}"), title="First steps"
        )
        started = step(f"assistants and conversations ({C + 2:,})", started)

        question = Message.objects.create(conversation=long_conversation, role="user", content="Hello")
        answer = """**In short:** the travel desk books it, and you claim expenses within 30 days [1].

- Book through the travel desk or the booking tool.
- Keep every receipt; a photo is enough [2].
- Ask your manager *before* booking anything over the limit.

| what | limit |
| --- | --- |
| hotel | 180 a night |
| meals | 60 a day |

See `travel-policy.md` for the details."""
        docs = list(Document.objects.filter(workspace=home).order_by("pk").values_list("pk", flat=True)[:2])
        citation = (
            f"jsonb_build_array(jsonb_build_object('n', 1, 'document_id', {docs[0]}, 'title', 'Travel policy 2026', "
            f"'location', 'Booking', 'page', 1, 'chunk_id', {chunk.pk}, 'snippet', "
            f"'Travel is booked through the travel desk', 'score', 0.9, 'version', '{template.content_version}'), "
            f"jsonb_build_object('n', 2, 'document_id', {docs[-1]}, 'title', 'Receipts', 'location', '', "
            "'page', null, 'chunk_id', 0, 'snippet', 'a photo is enough', 'score', 0.5, 'version', 'x'))"
        )
        answer_sql = "'" + answer.replace("'", "''") + "'"
        with Loading(cursor, "assistants_message"):
            # The long conversation: a thousand questions, each followed by its answer (ids in order).
            replicate(
                cursor,
                "assistants_message",
                question.pk,
                {
                    "id": f"{question.pk} + i",
                    "role": "CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END",
                    "question_id": f"CASE WHEN i % 2 = 1 THEN {question.pk} + i - 1 END",
                    "content": "CASE WHEN i % 2 = 0 THEN 'How do I claim item ' || i || ' of my trip?' "
                    f"ELSE {answer_sql} || ' (' || i || ')' END",
                    "citations": f"CASE WHEN i % 2 = 1 THEN {citation} ELSE '[]'::jsonb END",
                    "model_name": "CASE WHEN i % 2 = 1 THEN 'offline' ELSE '' END",
                    "prompt_tokens": "CASE WHEN i % 2 = 1 THEN 900 ELSE 0 END",
                    "completion_tokens": "CASE WHEN i % 2 = 1 THEN 120 ELSE 0 END",
                    "latency_ms": "CASE WHEN i % 2 = 1 THEN 850 ELSE 0 END",
                    "created_at": "now() - interval '1 day' + i * interval '10 seconds'",
                },
                f"generate_series(1, {LONG_CONVERSATION - 1}) i",
            )
            # Every other conversation: the same number of messages each, questions and answers in turn.
            per = max(2, round((n["messages"] - LONG_CONVERSATION) / C / 2) * 2)
            base = question.pk + LONG_CONVERSATION
            replicate(
                cursor,
                "assistants_message",
                question.pk,
                {
                    "id": f"{base} + (c.id - {long_conversation.pk}) * {per} + p",
                    "conversation_id": "c.id",
                    "role": "CASE WHEN p % 2 = 0 THEN 'user' ELSE 'assistant' END",
                    "question_id": f"CASE WHEN p % 2 = 1 THEN {base} + (c.id - {long_conversation.pk}) * {per} + p - 1 "
                    "END",
                    "content": "CASE WHEN p % 2 = 0 THEN 'What does the policy say about ' || c.title || '?' "
                    "ELSE 'It says to ask the **travel desk** first [1].' END",
                    "model_name": "CASE WHEN p % 2 = 1 THEN 'offline' ELSE '' END",
                    "prompt_tokens": "CASE WHEN p % 2 = 1 THEN 800 + p ELSE 0 END",
                    "completion_tokens": "CASE WHEN p % 2 = 1 THEN 100 + p ELSE 0 END",
                    "cost": "CASE WHEN p % 2 = 1 THEN 0.0012 ELSE 0 END",
                    "cache_hit": "p % 6 = 3",
                    "feedback": "CASE WHEN p = 1 AND c.id % 7 = 0 THEN 'up' WHEN p = 1 AND c.id % 11 = 0 "
                    "THEN 'down' ELSE '' END",
                    "created_at": "c.created_at + p * interval '20 seconds'",
                },
                f"assistants_conversation c, generate_series(0, {per - 1}) p "
                f"WHERE c.id > {long_conversation.pk} AND c.id <> {short_conversation.pk}",
            )
        restart_ids(cursor, "assistants_message")
        for turn in range(2):
            q = Message.objects.create(conversation=short_conversation, role="user", content=f"First question {turn}")
            Message.objects.create(
                conversation=short_conversation,
                role="assistant",
                question=q,
                content=answer,
                model_name="offline",
                citations=[
                    {"n": 1, "document_id": small_docs[0].pk, "title": "Welcome 0", "chunk_id": 0, "version": "x"},
                    {"n": 2, "document_id": small_docs[1].pk, "title": "Welcome 1", "chunk_id": 0, "version": "x"},
                ],
            )
        started = step(
            f"messages ({LONG_CONVERSATION + C * per:,}; one conversation of {LONG_CONVERSATION:,})", started
        )

        # Usage records: a completion each, spread over the last 90 days and every workspace.
        from django.utils import timezone

        record = UsageRecord.objects.create(
            request_id="00000000-0000-0000-0000-000000000000",
            workspace=home,
            user=reader,
            model="offline",
            cache="miss",
            created_at=timezone.now(),
            prompt_tokens=900,
            completion_tokens=120,
        )
        with Loading(cursor, "llmgateway_usagerecord"):
            replicate(
                cursor,
                "llmgateway_usagerecord",
                record.pk,
                {
                    "request_id": "md5('scale' || i)::uuid",
                    "workspace_id": f"CASE WHEN i % 10 = 0 THEN {home.pk} ELSE w.id END",
                    "user_id": f"CASE WHEN i % 10 = 0 THEN {reader.pk} ELSE NULL END",
                    "model": "(ARRAY['offline','gpt-4o-mini','llama-3-8b'])[1 + i % 3]",
                    "cache": "(ARRAY['hit','miss','miss','coalesced'])[1 + i % 4]",
                    "prompt_tokens": "500 + i % 700",
                    "completion_tokens": "50 + i % 300",
                    "cost": "0.0001 * (i % 20)",
                    "latency_ms": "10 + i % 900",
                    "created_at": f"now() - i * (interval '90 days' / {n['usage']})",
                },
                f"generate_series(1, {n['usage'] - 1}) i, seed_ws w WHERE w.n = i % {W}",
            )
        started = step(f"usage records ({n['usage']:,})", started)
        from llmgateway.metering import totals

        totals.rebuild()  # the hourly and daily totals the usage pages read, as the bulk writer keeps them
        started = step("usage totals", started)
        cursor.execute(f"CREATE TABLE {MARKER} (scale double precision, seeded_at timestamptz DEFAULT now())")
        cursor.execute(f"INSERT INTO {MARKER} (scale) VALUES (%s)", [scale])

    with connection.cursor() as cursor:
        for table in BIG_TABLES + ["corporate_user", "workspaces_workspace", "workspaces_membership"]:
            cursor.execute(f"VACUUM ANALYZE {table}")
    started = step("VACUUM ANALYZE", started)
    print(f"  seeded in {time.perf_counter() - begun:.0f} s", flush=True)


# Measuring ------------------------------------------------------------------------------------------


def server_timing(response):
    """(db ms, queries) from the `db` entry of the Server-Timing header."""
    for entry in response.get("Server-Timing", "").split(","):
        parts = [p.strip() for p in entry.split(";")]
        if parts[0] != "db":
            continue
        fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        queries = int(fields.get("desc", '"0').strip('"').split()[0])
        return float(fields.get("dur", 0)), queries
    return 0.0, 0


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def open_page(client, url, requests):
    """Cold figures (first request), then `requests` timed ones after one warm-up."""
    started = time.perf_counter()
    response = client.get(url)
    cold_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    cold_db, cold_queries = server_timing(response)
    client.get(url)
    server, db, queries = [], [], set()
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        server.append((time.perf_counter() - started) * 1000)
        ms, count = server_timing(response)
        db.append(ms)
        queries.add(count)
    return {
        "cold_ms": cold_ms,
        "cold_queries": cold_queries,
        "p50": percentile(server, 50),
        "p95": percentile(server, 95),
        "db95": percentile(db, 95),
        "queries": max(queries),
        "bytes": len(response.content),
    }


def pages():
    """(name, who, large url, small url) of every page a user opens; the small one of the same kind."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from assistants.models import Conversation
    from documents.models import Document
    from workspaces.models import Workspace

    User = get_user_model()
    reader, newcomer = (User.objects.get(email=f"{who}@{DOMAIN}") for who in ("reader", "newcomer"))
    home, small = Workspace.objects.get(slug="team-0000"), Workspace.objects.get(slug="new-team")
    long_conversation = Conversation.objects.filter(user=reader).order_by("pk").first()
    short_conversation = Conversation.objects.filter(user=newcomer).first()
    assistant, small_assistant = long_conversation.assistant, short_conversation.assistant
    document = Document.objects.filter(workspace=home).order_by("pk").first()
    small_document = Document.objects.filter(workspace=small).order_by("pk").first()
    big, little = home.slug, small.slug

    def both(name, url, *args_pair, query="", who="member"):
        large, few = args_pair if args_pair else ((), ())
        return (name, who, reverse(url, args=large) + query, reverse(url, args=few) + query)

    rows = [
        ("dashboard", "member", reverse("dashboard"), reverse("dashboard")),
        ("workspace list", "member", reverse("workspaces:list"), reverse("workspaces:list")),
        both("workspace overview", "workspaces:detail", [big], [little]),
        both("document list", "documents:list", [big], [little]),
        both("document list, failed", "documents:list", [big], [little], query="?status=failed"),
        both("document list, page 3", "documents:list", [big], [little], query="?page=3"),
        both("document detail", "documents:detail", [big, document.pk], [little, small_document.pk]),
        both("search, rare words", "documents:search", [big], [little], query="?q=dental+relocation"),
        both("search, common word", "documents:search", [big], [little], query="?q=travel"),
        both("assistant list", "assistants:list", [big], [little]),
        both(
            "chat, long conversation",
            "assistants:conversation",
            [big, assistant.pk, long_conversation.pk],
            [little, small_assistant.pk, short_conversation.pk],
        ),
        both("chat, new conversation", "assistants:chat", [big, assistant.pk], [little, small_assistant.pk]),
        both("assistant usage", "assistants:usage", [big], [little]),
        ("gateway home", "member", reverse("llmgateway:home"), reverse("llmgateway:home")),
        both("gateway models", "llmgateway:models", [big], [little]),
        both("gateway keys", "llmgateway:keys", [big], [little]),
        both("gateway cache", "llmgateway:cache", [big], [little]),
        both("gateway usage", "llmgateway:usage", [big], [little]),
    ]
    for label, model in [
        ("users", "corporate/user"),
        ("documents", "documents/document"),
        ("passages", "documents/chunk"),
        ("conversations", "assistants/conversation"),
        ("messages", "assistants/message"),
        ("usage records", "llmgateway/usagerecord"),
    ]:
        url = f"/admin/{model}/"
        few = {
            "corporate/user": "?is_staff__exact=1",
            "documents/document": f"?workspace__id__exact={small.pk}",
            "documents/chunk": f"?workspace__id__exact={small.pk}",
            "assistants/conversation": f"?assistant__id__exact={small_assistant.pk}",
            "assistants/message": "?role__exact=user",
            "llmgateway/usagerecord": "?cache__exact=hit",
        }[model]
        rows.append((f"admin: {label}", "admin", url, url + few))
    return rows, {"member": (reader, newcomer), "admin": (User.objects.get(email=f"admin@{DOMAIN}"),) * 2}


def measure(requests, only=None, skip=None):
    from django.test import Client

    from corporate import installation
    from corporate.observability import queries as slow_log

    installation.current()
    slow_log.forget_slowest()
    rows, users = pages()
    results = []
    clients = {}
    for name, who, large, few in rows:
        if only and not any(word in name for word in only):
            continue
        if skip and any(word in name for word in skip):
            continue
        for size in ("large", "small"):
            key = (who, size)
            if key not in clients:
                clients[key] = Client(HTTP_HOST="127.0.0.1")
                clients[key].force_login(users[who][0 if size == "large" else 1])
        large_figures = open_page(clients[(who, "large")], large, requests)
        small_figures = open_page(clients[(who, "small")], few, max(3, requests // 4))
        results.append((name, large, large_figures, small_figures))
        print(f"  {name}: {large_figures['p95']:.0f} ms", file=sys.stderr, flush=True)
    return results


def report(results, scale, requests):
    print()
    print(f"Pages at scale {scale} ({requests} requests each after a warm-up; server = the whole handler)")
    header = (
        f"{'page':<26} {'server p50':>10} {'p95':>7} {'db p95':>7} {'queries':>7} {'small':>5} "
        f"{'cold ms':>8} {'cold q':>6}  flags"
    )
    print(header)
    print("-" * len(header))
    missed = 0
    for name, _url, big, small in results:
        flags = []
        if big["db95"] >= DB_TARGET_MS:
            flags.append("DB")
        if big["p95"] >= SERVER_TARGET_MS:
            flags.append("SLOW")
        if big["queries"] != small["queries"]:
            flags.append("QUERIES VARY")
        missed += bool(flags)
        print(
            f"{name:<26} {big['p50']:>8.1f}ms {big['p95']:>5.1f}ms {big['db95']:>5.1f}ms {big['queries']:>7} "
            f"{small['queries']:>5} {big['cold_ms']:>6.0f}ms {big['cold_queries']:>6}  {' '.join(flags)}"
        )
    print(
        f"\nTargets: database p95 < {DB_TARGET_MS} ms, server p95 < {SERVER_TARGET_MS} ms, the same queries at "
        f"both sizes. {len(results) - missed} of {len(results)} pages meet them."
    )
    return missed


def print_slowest(limit):
    from corporate.observability import queries as slow_log

    entries = slow_log.slowest()[:limit]
    print(f"\nSlow-query log, top {len(entries)} (at least {slow_log.settings.DB_SLOW_QUERY_MS} ms):")
    for entry in entries:
        print(
            f"  {entry['max_ms']:7.1f} ms max, {entry['mean_ms']:6.1f} ms mean, {entry['count']:>4}x  "
            f"{entry['origin']}\n      {entry['sql'][:300]}"
        )
    if not entries:
        print("  (none)")


def database_url(url):
    """The PostgreSQL URL to use; SQLite is refused with a message."""
    if not url:
        sys.exit(
            "Set DATABASE_URL (or --database-url) to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1/scale_bench"
        )
    scheme = urlsplit(url).scheme
    if scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(
            f"The scale benchmark measures PostgreSQL, and {scheme or 'this URL'} is not: "
            "set DATABASE_URL=postgres://... (SQLite is the laptop default, not a large company's database)"
        )
    return url


def ensure_database(url):
    """Create the database when it does not exist yet."""
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    conn = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if not cursor.fetchone():
                cursor.execute(f'CREATE DATABASE "{name}"')
                print(f"Created database {name}")
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full volume (default 1)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the database holds the seed")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page (default 20)")
    parser.add_argument("--slow-ms", type=int, default=25, help="DB_SLOW_QUERY_MS for the run (default 25)")
    parser.add_argument("--only", nargs="*", help="measure only pages whose name contains one of these words")
    parser.add_argument("--skip", nargs="*", help="skip pages whose name contains one of these words")
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args()
    if not 0 < args.scale <= 10:
        sys.exit("--scale is a fraction of the full volume, between 0 and 10 (0.05 for a quick run)")
    url = database_url(args.database_url)
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ["DB_SLOW_QUERY_MS"] = str(args.slow_ms)
    os.environ.setdefault("CACHE_KEY_PREFIX", "scale_bench")

    import logging

    import django

    django.setup()
    # The slow-query log keeps its list; its lines (and the access log) would drown the table.
    for name in ("corporate.slow_queries", "corporate.middleware", "corporate.observability.middleware"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from django.conf import settings

    if not (settings.STATIC_ROOT / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)  # pages name hashed static files
    with connection.cursor() as cursor:
        existing = seeded_scale(cursor)
    if args.reseed or existing != args.scale:
        seed(args.scale)
    else:
        print(f"Reusing the seed at scale {existing} in {connection.settings_dict['NAME']} (--reseed to redo)")
    if args.seed_only:
        return
    with connection.cursor() as cursor:
        counts = {}
        for table in BIG_TABLES:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
            counts[table] = cursor.fetchone()[0]
    print("Rows (estimated): " + ", ".join(f"{t.split('_', 1)[1]} {c:,}" for t, c in counts.items()))
    results = measure(args.requests, args.only, args.skip)
    missed = report(results, args.scale, args.requests)
    print_slowest(10)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
