"""An id no database row can have (past a signed 64-bit integer) is a clear 400 or an empty answer, never a 500.

SQLite refuses to bind such a number at all (OverflowError); PostgreSQL compares it.
"""

import pytest

HUGE = "99999999999999999999"


@pytest.fixture
def assistant(workspace, member):
    from assistants.models import Assistant

    return Assistant.objects.create(workspace=workspace, name="Helpdesk", created_by=member)


def test_usage_filters_name_the_field(workspace, admin_user, api_client_for):
    client = api_client_for(admin_user)
    for name in ("user", "api_key", "assistant"):
        for path in ("/api/gateway/acme/usage/", "/api/gateway/acme/usage/summary/"):
            response = client.get(path, {name: HUGE})
            assert response.status_code == 400, (path, name, response.content[:200])
            assert name in response.json()


def test_search_names_the_document_field(workspace, member, api_client_for):
    response = api_client_for(member).get("/api/documents/search/", {"q": "vacation", "document": HUGE})
    assert response.status_code == 400, response.content[:200]
    assert "document" in response.json()


def test_conversations_of_an_assistant_no_row_can_be_are_none(assistant, member, api_client_for):
    from assistants.models import Conversation

    Conversation.objects.create(assistant=assistant, user=member, title="Mine")
    client = api_client_for(member)
    assert client.get("/api/conversations/", {"assistant": assistant.pk}).json()["count"] == 1
    response = client.get("/api/conversations/", {"assistant": HUGE})
    assert response.status_code == 200 and response.json()["count"] == 0


def test_the_assistant_form_says_the_document_is_no_choice(assistant, workspace, member, client_for):
    data = {"name": "Helpdesk", "temperature": "0.2", "max_tokens": "800", "passages": "5", "documents": [HUGE]}
    for path in (f"/assistants/acme/{assistant.pk}/edit/", "/assistants/acme/new/"):
        response = client_for(member).post(path, data)
        assert response.status_code == 400, (path, response.status_code)  # a form with errors, shown again
        assert "documents" in response.context["form"].errors
