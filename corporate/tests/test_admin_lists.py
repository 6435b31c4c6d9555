"""The admin's lists of large tables: one cheap count, the same queries however many rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from corporate import admin_lists

pytestmark = pytest.mark.django_db

LISTS = [
    "/admin/corporate/user/",
    "/admin/documents/document/",
    "/admin/documents/chunk/",
    "/admin/assistants/conversation/",
    "/admin/assistants/message/",
    "/admin/llmgateway/usagerecord/",
    "/admin/llmgateway/usagerecord/?origin=chat&status_class=2",
]


@pytest.fixture
def staff(make_user):
    return make_user("root@example.com", is_staff=True, is_superuser=True)


def add_rows(workspace, user, count, start=0):
    from assistants.models import Assistant, Conversation, Message
    from documents.models import Chunk, Document
    from llmgateway.models import UsageRecord

    assistant = Assistant.objects.filter(workspace=workspace).first() or Assistant.objects.create(
        workspace=workspace, name="Helper"
    )
    for i in range(start, start + count):
        document = Document.objects.create(
            workspace=workspace,
            title=f"Doc {i}",
            original_name=f"d{i}.md",
            kind="markdown",
            content_type="text/markdown",
            size=1,
            sha256=f"{i:064d}",
            status="ready",
            uploaded_by=user,
        )
        Chunk.objects.create(
            document=document, workspace=workspace, position=0, text=f"Passage {i}", start=0, end=9, token_estimate=2
        )
        conversation = Conversation.objects.create(assistant=assistant, user=user, title=f"Conversation {i}")
        question = Message.objects.create(conversation=conversation, role="user", content="Why?")
        Message.objects.create(conversation=conversation, role="assistant", question=question, content="Because.")
        UsageRecord.objects.create(
            request_id=f"00000000-0000-0000-0000-{i:012d}",
            workspace=workspace,
            user=user,
            model="offline",
            cache="miss",
            origin="chat",
            created_at=timezone.now(),
        )


def queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured.captured_queries)


def test_admin_lists_cost_the_same_queries_for_2_rows_and_60(client_for, staff, workspace, member):
    client = client_for(staff)
    add_rows(workspace, member, 2)
    for url in LISTS:
        queries(client, url)  # what a process reads once (the database's search features) is not per list
    few = {url: queries(client, url) for url in LISTS}
    add_rows(workspace, member, 58, start=2)  # more than a page (50)
    assert {url: queries(client, url) for url in LISTS} == few


def test_the_message_list_queries(client_for, staff, workspace, member, django_assert_num_queries):
    client = client_for(staff)
    add_rows(workspace, member, 60)
    client.get("/admin/assistants/message/")
    # session, user, the count, the page of messages (with their conversations)
    with django_assert_num_queries(4):
        response = client.get("/admin/assistants/message/")
    assert response.status_code == 200
    assert response.content.decode().count("/admin/assistants/message/") >= 50


def test_the_list_is_newest_first(client_for, staff, workspace, member):
    from assistants.models import Message

    add_rows(workspace, member, 3)
    html = client_for(staff).get("/admin/assistants/message/").content.decode()
    newest, oldest = Message.objects.order_by("-pk")[0].pk, Message.objects.order_by("pk")[0].pk
    assert html.index(f"/admin/assistants/message/{newest}/") < html.index(f"/admin/assistants/message/{oldest}/")


def test_the_count_is_exact_when_small_and_bounded_or_estimated_when_large(workspace, member, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's planner statistics")
    from assistants.models import Message

    add_rows(workspace, member, 6)  # 12 messages
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE assistants_message")  # statistics of these rows, not of an earlier test's
    paginator = admin_lists.EstimatedCountPaginator
    assert paginator(Message.objects.all(), 50).count == 12
    assert paginator(Message.objects.filter(role="user"), 50).count == 6

    monkeypatch.setattr(admin_lists, "EXACT_UP_TO", 4)
    # Filtered: counted up to the bound and no further.
    assert paginator(Message.objects.filter(role="user"), 50).count == 5
    # Unfiltered: the planner's estimate once the table is over the bound (after ANALYZE).
    Message.objects.filter(role="assistant").delete()  # 6 rows left
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE assistants_message")
    Message.objects.create(conversation=Message.objects.first().conversation, role="user", content="Not counted")
    assert paginator(Message.objects.all(), 50).count == 6


@pytest.mark.parametrize(
    "path",
    [
        "/admin/workspaces/workspace/?pk__in=99999999999999999999999",
        "/admin/workspaces/workspace/?created_at__year=-1",
        "/admin/workspaces/workspace/?created_at__year=99999999999999999999",
        "/admin/documents/document/?pk__in=99999999999999999999999",
        "/admin/llmgateway/usagerecord/?pk__in=99999999999999999999999",
        "/admin/auth/group/?pk__in=99999999999999999999999",
    ],
)
def test_a_filter_value_the_database_cannot_take_is_a_bad_lookup_not_a_500(client, staff, workspace, path):
    client.force_login(staff)
    response = client.get(path)
    if response.status_code == 200:  # PostgreSQL's backend finds no row for an id past 64 bits, without an error
        assert "99999999999999999999999" in path and connection.vendor == "postgresql"
        return
    assert response.status_code == 302 and response["Location"].endswith("?e=1"), response.status_code
    assert client.get(response["Location"]).status_code == 200  # Django's page for a bad lookup
