"""/api takes text only as JSON strings and lists only as JSON arrays: a number is not turned into text,
an object is not read as the list of its keys."""

import pytest


@pytest.mark.parametrize(
    "path, fields, field",
    [
        ("/api/workspaces/", {"name": "W", "slug": 1e40}, "slug"),
        ("/api/workspaces/", {"name": 12345, "slug": "numbers"}, "name"),
        ("/api/assistants/", {"workspace": "acme", "name": 5}, "name"),
        ("/api/assistants/", {"workspace": "acme", "name": "Helpdesk", "description": 1.5}, "description"),
        ("/api/assistants/", {"workspace": "acme", "name": "Helpdesk", "instructions": [1]}, "instructions"),
        ("/api/assistants/", {"workspace": "acme", "name": "Helpdesk", "documents": {}}, "documents"),
        ("/api/gateway/acme/keys/", {"name": 7}, "name"),
    ],
)
def test_text_fields_refuse_numbers_and_lists_refuse_objects(owner, workspace, api_client_for, path, fields, field):
    response = api_client_for(owner).post(path, fields, format="json")
    assert response.status_code == 400, (path, response.status_code, response.content[:300])
    assert field in response.json(), response.json()


def test_feedback_comment_refuses_a_number(workspace, member, api_client_for):
    from assistants.models import Assistant, Conversation, Message, Role

    assistant = Assistant.objects.create(workspace=workspace, name="Helpdesk", created_by=member)
    conversation = Conversation.objects.create(assistant=assistant, user=member)
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="Hi?")
    answer = Message.objects.create(conversation=conversation, role=Role.ASSISTANT, content="Hi.", question=question)
    client = api_client_for(member)
    response = client.post(f"/api/messages/{answer.pk}/feedback/", {"feedback": "up", "comment": 5}, format="json")
    assert response.status_code == 400 and "comment" in response.json(), response.content[:300]
    response = client.post(f"/api/messages/{answer.pk}/feedback/", {"feedback": "up", "comment": "Good"}, format="json")
    assert response.status_code == 200, response.content[:300]


def test_strings_are_still_taken(owner, workspace, api_client_for):
    client = api_client_for(owner)
    created = client.post("/api/workspaces/", {"name": "Numbers", "slug": "numbers-1"}, format="json")
    assert created.status_code == 201, created.content[:300]
    assistant = client.post(
        "/api/assistants/",
        {"workspace": "acme", "name": "Helpdesk", "description": "1.5", "documents": []},
        format="json",
    )
    assert assistant.status_code == 201, assistant.content[:300]
