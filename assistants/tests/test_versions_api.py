"""An answer's versions through the API: feedback says which version it is; the versions list is one bare list."""

from assistants.models import Message

QUESTION = "How many vacation days do I get?"


def test_feedback_on_a_later_version_says_which_version_it_is(api_client_for, member, assistant):
    client = api_client_for(member)
    conversation = client.post("/api/conversations/", {"assistant": assistant.pk}, format="json").json()["id"]
    first = client.post(f"/api/conversations/{conversation}/messages/", {"content": QUESTION}, format="json").json()
    latest = client.post(f"/api/messages/{first['id']}/regenerate/", {}, format="json").json()
    count = Message.objects.filter(question_id=first["question"], role="assistant").count()
    assert latest["version"] == latest["version_count"] == count > 1
    response = client.post(f"/api/messages/{latest['id']}/feedback/", {"feedback": "up"}, format="json")
    body = response.json()
    assert response.status_code == 200 and body["feedback"] == "up"
    assert (body["version"], body["version_count"], body["current"]) == (count, count, True)
    earlier = client.post(f"/api/messages/{first['id']}/feedback/", {"feedback": "down"}, format="json").json()
    assert (earlier["version"], earlier["version_count"], earlier["current"]) == (1, count, False)


def test_the_versions_list_is_documented_as_the_bare_list_it_is(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    versions = schema["paths"]["/api/messages/{id}/versions/"]["get"]
    assert "page" not in [p["name"] for p in versions.get("parameters", [])]
    listed = versions["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["type"] == "array"
