"""Suggested starter questions: set in the assistant's editor or the API, offered on an empty chat."""

from assistants.models import MAX_STARTERS

FORM = {
    "name": "Helpdesk",
    "model_name": "",
    "temperature": "0",
    "max_tokens": "500",
    "passages": "3",
    "all_documents": "on",
}


def test_editor_sets_starter_questions_one_per_line(client_for, member, assistant):
    client = client_for(member)
    url = f"/assistants/acme/{assistant.pk}/edit/"
    page = client.get(url).content.decode()
    assert 'name="starter_questions"' in page and "Suggested questions" in page
    response = client.post(url, {**FORM, "starter_questions": "How many vacation days?\n\n  Where is the VPN?  \n"})
    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.starter_questions == ["How many vacation days?", "Where is the VPN?"]
    # Shown back in the box one per line.
    assert "How many vacation days?\nWhere is the VPN?" in client.get(url).content.decode()


def test_editor_refuses_too_many_or_too_long(client_for, member, assistant):
    client = client_for(member)
    url = f"/assistants/acme/{assistant.pk}/edit/"
    many = "\n".join(f"Question {i}?" for i in range(MAX_STARTERS + 1))
    response = client.post(url, {**FORM, "starter_questions": many})
    assert response.status_code == 400
    assert f"At most {MAX_STARTERS} starter questions" in response.content.decode()
    # Nothing typed is lost.
    assert "Question 6?" in response.content.decode()
    response = client.post(url, {**FORM, "starter_questions": "x" * 201})
    assert response.status_code == 400 and "the limit is 200" in response.content.decode()
    assistant.refresh_from_db()
    assert assistant.starter_questions == []


def test_api_sets_and_validates_starter_questions(api_client_for, member, assistant):
    client = api_client_for(member)
    url = f"/api/assistants/{assistant.pk}/"
    response = client.patch(url, {"starter_questions": ["Vacation?", " VPN? "]}, format="json")
    assert response.status_code == 200 and response.json()["starter_questions"] == ["Vacation?", "VPN?"]
    for bad in (["x"] * (MAX_STARTERS + 1), [""], ["x" * 201], "Vacation?", [3]):
        response = client.patch(url, {"starter_questions": bad}, format="json")
        assert response.status_code == 400 and "starter_questions" in response.json(), bad


def test_empty_chat_offers_them_and_a_conversation_does_not(client_for, member, viewer, assistant, ask_page):
    assistant.starter_questions = ["How many vacation days do I get?", "Where is <the> VPN?"]
    assistant.save()
    client = client_for(member)
    page = client.get(f"/assistants/acme/{assistant.pk}/").content.decode()
    assert 'data-starter="How many vacation days do I get?"' in page
    assert 'data-starter="Where is &lt;the&gt; VPN?"' in page
    cid = ask_page(client, assistant, "Hello?")[0][1]["id"]
    assert "data-starter" not in client.get(f"/assistants/acme/{assistant.pk}/c/{cid}/").content.decode()
    assistant.archived = True
    assistant.save()
    assert "data-starter" not in client.get(f"/assistants/acme/{assistant.pk}/").content.decode()
