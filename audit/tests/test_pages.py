"""The audit pages: who may see them, filters, pagination, export, and a constant number of queries."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

import audit
from audit.models import AuditEvent


@pytest.fixture
def staff(make_user):
    return make_user("staff@example.com", is_staff=True)


def fill(workspace, n, actor, **extra):
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            created_at=now - timedelta(minutes=i),
            actor_id=actor.pk,
            actor_email=actor.email,
            action="document.upload",
            workspace_id=workspace.pk,
            workspace_slug=workspace.slug,
            object_type="document",
            object_id=str(i),
            object_repr=f"Report {i}",
            changes={"title": [None, f"Report {i}"]},
            **extra,
        )
        for i in range(n)
    )


def body(response):
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


# Who sees what


def test_workspace_admins_see_their_workspace_only(client_for, admin_user, workspace, other_workspace, outsider):
    fill(workspace, 2, admin_user)
    audit.record(outsider, "workspace.update", obj=other_workspace, changes={"name": ["Globex", "Globex Secret"]})
    page = client_for(admin_user).get("/workspaces/acme/audit/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Report 0" in text and "Report 1" in text
    assert "Globex" not in text
    assert 'aria-current="page">Audit</a>' in text  # the workspace tab bar has the tab


def test_members_get_403_outsiders_404(client_for, member, outsider, workspace):
    assert client_for(member).get("/workspaces/acme/audit/").status_code == 403
    assert client_for(member).get("/workspaces/acme/audit/export/").status_code == 403
    assert client_for(outsider).get("/workspaces/acme/audit/").status_code == 404


def test_only_staff_see_the_whole_log(client_for, staff, member, admin_user, workspace, other_workspace, outsider):
    fill(workspace, 1, admin_user)
    audit.record(outsider, "workspace.update", obj=other_workspace)
    for path in ["/audit/", "/audit/export/"]:
        assert client_for(member).get(path).status_code == 403
        assert client_for(admin_user).get(path).status_code == 403
    refused = client_for(admin_user).get("/audit/")
    assert "The site&#x27;s audit log is for staff." in refused.content.decode()
    assert "Report 0" not in refused.content.decode()
    page = client_for(staff).get("/audit/")
    assert page.status_code == 200
    assert "Report 0" in page.content.decode() and "globex" in page.content.decode()
    # Staff see the nav entries; others do not.
    assert b'href="/audit/"' in page.content and b'href="/people/"' in page.content
    assert b'href="/audit/"' not in client_for(member).get("/").content


def test_anonymous_is_sent_to_sign_in(client, workspace):
    for path in ["/audit/", "/workspaces/acme/audit/", "/audit/export/"]:
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# Filters, pagination, export


def test_filters(client_for, staff, admin_user, owner, workspace, other_workspace, outsider):
    fill(workspace, 3, admin_user)
    old = AuditEvent.objects.create(
        action="membership.update", actor_email=owner.email, workspace_id=workspace.pk, workspace_slug="acme",
        object_type="membership", object_repr="old change", created_at=timezone.now() - timedelta(days=10),
    )  # fmt: skip
    audit.record(outsider, "workspace.update", obj=other_workspace)
    client = client_for(staff)

    def shown(query):
        response = client.get("/audit/", query)
        assert response.status_code == 200, response.content[:500]
        return [e.pk for e in response.context["events"]]

    assert len(shown({"actor": "Admin.Member@example.com"})) == 3
    assert shown({"action": "membership.update"}) == [old.pk]
    memberships = shown({"object_type": "membership"})
    assert old.pk in memberships
    assert set(AuditEvent.objects.filter(pk__in=memberships).values_list("object_type", flat=True)) == {"membership"}
    assert set(
        AuditEvent.objects.filter(pk__in=shown({"workspace": "globex"})).values_list("workspace_slug", flat=True)
    ) == {"globex"}
    day = (timezone.localdate() - timedelta(days=10)).isoformat()
    assert shown({"since": day, "until": day, "action": "membership.update"}) == [old.pk]
    assert old.pk not in shown({"since": timezone.localdate().isoformat()})
    # The workspace page ignores a workspace filter: it cannot reach another workspace.
    response = client_for(admin_user).get("/workspaces/acme/audit/", {"workspace": "globex"})
    assert all(e.workspace_id == workspace.pk for e in response.context["events"])


def test_bad_filters_get_a_clear_400(client_for, staff, admin_user, workspace):
    response = client_for(staff).get("/audit/", {"since": "yesterday-ish", "object_type": "spaceship"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Enter a valid date" in text and "Select a valid choice" in text
    assert response.context["events"] == []
    response = client_for(admin_user).get(
        "/workspaces/acme/audit/export/", {"since": "2026-05-02", "until": "2026-05-01"}
    )
    assert response.status_code == 400 and "The end date is before the start date." in response.content.decode()
    # A nonsense page number is the first page, not an error.
    assert client_for(staff).get("/audit/", {"page": "x"}).status_code == 200


def test_pagination(client_for, admin_user, workspace):
    fill(workspace, 120, admin_user)
    client = client_for(admin_user)
    first = client.get("/workspaces/acme/audit/", {"actor": admin_user.email})
    assert len(first.context["events"]) == 50 and first.context["has_next"]
    assert "page=2" in first.content.decode() and "actor=admin.member%40example.com" in first.content.decode()
    third = client.get("/workspaces/acme/audit/", {"actor": admin_user.email, "page": 3})
    assert len(third.context["events"]) == 20 and not third.context["has_next"]
    assert third.context["events"][-1].object_repr == "Report 119"  # oldest last


def test_export_is_csv_with_the_filters_and_no_formulas(client_for, admin_user, workspace):
    fill(workspace, 3, admin_user)
    audit.record(admin_user, "document.update", obj=workspace, changes={"title": ["a", "=HYPERLINK(evil)"]})
    response = client_for(admin_user).get("/workspaces/acme/audit/export/", {"action": "document.update"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert len(rows) == 1
    assert rows[0]["actor"] == "admin.member@example.com" and rows[0]["workspace"] == "acme"
    assert '"=HYPERLINK' in rows[0]["changes"]  # inside JSON: not at the start of the cell
    everything = list(csv.DictReader(io.StringIO(body(client_for(admin_user).get("/workspaces/acme/audit/export/")))))
    assert len(everything) == AuditEvent.objects.filter(workspace_id=workspace.pk).count() >= 4


def test_export_cells_never_start_a_formula(client_for, staff, workspace):
    audit.record("=cmd|' /C calc'!A0", "user.login_failed")
    response = client_for(staff).get("/audit/export/", {"action": "user.login_failed"})
    rows = list(csv.reader(io.StringIO(body(response))))
    assert rows[1][1] == "'=cmd|' /c calc'!a0"  # stored lowercased, as sign-in compares it


# Query counts


def test_workspace_page_queries_do_not_grow_with_rows(client_for, admin_user, workspace, django_assert_num_queries):
    client = client_for(admin_user)
    fill(workspace, 2, admin_user)
    client.get("/workspaces/acme/audit/")  # warm the session
    # 4 queries (the session comes from the cache): the user, the user's roles, the workspace, a page of events.
    with django_assert_num_queries(4):
        assert client.get("/workspaces/acme/audit/").status_code == 200
    fill(workspace, 60, admin_user)
    with django_assert_num_queries(4):
        response = client.get("/workspaces/acme/audit/", {"object_type": "document"})
        assert len(response.context["events"]) == 50


def test_staff_page_and_export_queries_do_not_grow_with_rows(
    client_for, staff, admin_user, workspace, django_assert_num_queries
):
    client = client_for(staff)
    fill(workspace, 2, admin_user)
    client.get("/audit/")
    # 2 queries (the session comes from the cache): the user, a page of events.
    with django_assert_num_queries(2):
        client.get("/audit/")
    fill(workspace, 200, admin_user)
    with django_assert_num_queries(2):
        assert len(client.get("/audit/").context["events"]) == 50
    # The export: the user, the events (streamed in chunks from one query).
    total = AuditEvent.objects.count()
    with django_assert_num_queries(2):
        lines = body(client.get("/audit/export/")).splitlines()
        assert len(lines) == 1 + total >= 1 + 202


def test_the_first_and_last_days_a_date_can_be_are_filters_like_any(client_for, staff, admin_user, workspace):
    everything = AuditEvent.objects.filter(workspace_id=workspace.pk).count()
    fill(workspace, 2, admin_user)
    for query in ({"until": "9999-12-31"}, {"since": "0001-01-01"}, {"since": "9999-12-31", "until": "9999-12-31"}):
        for path in ("/audit/", "/audit/export/", "/workspaces/acme/audit/"):
            response = client_for(staff if path.startswith("/audit/") else admin_user).get(path, query)
            assert response.status_code == 200, (path, query)
    response = client_for(admin_user).get("/workspaces/acme/audit/", {"since": "0001-01-01", "until": "9999-12-31"})
    assert len(response.context["events"]) == everything + 2
