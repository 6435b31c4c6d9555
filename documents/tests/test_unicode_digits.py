"""Ids are ASCII digits: "²" (a digit to str.isdigit(), refused by int()) is a 404, never a 500, and another
script's digits ("١", which int() reads as 1) name no row."""

import pytest

SUPERSCRIPT_TWO = "\u00b2"
ARABIC_INDIC_ONE = "\u0661"


@pytest.fixture
def conversation(workspace, member):
    from assistants.models import Assistant, Conversation, Message, Role

    assistant = Assistant.objects.create(workspace=workspace, name="Helpdesk", created_by=member)
    conversation = Conversation.objects.create(assistant=assistant, user=member, title="Mine")
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="Hello?")
    Message.objects.create(conversation=conversation, role=Role.ASSISTANT, content="Hi.", question=question)
    return conversation


@pytest.mark.parametrize("digit", [SUPERSCRIPT_TWO, ARABIC_INDIC_ONE])
def test_api_addresses_with_other_digits_are_not_found(conversation, member, api_client_for, digit):
    client = api_client_for(member)
    answer = conversation.messages.get(role="assistant")
    gets = [
        f"/api/conversations/{digit}/",
        f"/api/conversations/{digit}/messages/",
        f"/api/conversations/{digit}/export/",
        f"/api/messages/{digit}/versions/",
        f"/api/assistants/{digit}/",
        f"/api/documents/{digit}/",
    ]
    for path in gets:
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code, response.content[:200])
        assert response["Content-Type"].startswith("application/json"), path
    for path in (f"/api/messages/{digit}/regenerate/", f"/api/messages/{digit}/show/"):
        response = client.post(path, {}, format="json")
        assert response.status_code == 404, (path, response.status_code, response.content[:200])
    response = client.patch(f"/api/conversations/{digit}/", {"title": "x"}, format="json")
    assert response.status_code == 404
    listed = client.get("/api/conversations/", {"assistant": digit})
    assert listed.status_code == 200 and listed.json()["count"] == 0
    # The same ids in ASCII digits still work.
    assert client.get(f"/api/conversations/{conversation.pk}/").status_code == 200
    assert client.get(f"/api/messages/{answer.pk}/versions/").status_code == 200
    assert client.get("/api/conversations/", {"assistant": conversation.assistant_id}).json()["count"] == 1


@pytest.mark.parametrize("digit", [SUPERSCRIPT_TWO, ARABIC_INDIC_ONE])
def test_pages_with_other_digits_in_their_query_are_shown_as_without_them(
    conversation, member, client_for, ingest, digit
):
    client = client_for(member)
    page = client.get(f"/assistants/acme/{conversation.assistant_id}/c/{conversation.pk}/", {"before": digit})
    assert page.status_code == 200
    document = ingest("policy.txt", b"Vacation policy.\n\nTwenty days a year.")
    page = client.get(f"/documents/acme/{document.pk}/", {"chunk": digit})
    assert page.status_code == 200
    asked = client.post(
        f"/assistants/acme/{conversation.assistant_id}/ask/", {"question": "Hi?", "conversation": digit}
    )
    assert asked.status_code == 404
