"""An assistant's version (the key of its cached answers) goes up only when what its answers depend on changes."""

from assistants.forms import AssistantForm
from assistants.models import Assistant


def test_an_api_edit_makes_a_new_version_only_when_answers_would_change(api_client_for, member, assistant, handbook):
    client = api_client_for(member)
    url = f"/api/assistants/{assistant.pk}/"
    start = client.get(url).json()["version"]
    unchanged = [
        {},
        {"description": "Something else"},
        {"starter_questions": ["How do I connect to the VPN?"]},
        {"instructions": assistant.instructions, "temperature": assistant.temperature},
    ]
    for body in unchanged:
        response = client.patch(url, body, format="json")
        assert response.status_code == 200 and response.json()["version"] == start, body
    version = start
    for body in ({"instructions": "Answer in one sentence."}, {"all_documents": False, "documents": [handbook.pk]}):
        version += 1
        assert client.patch(url, body, format="json").json()["version"] == version, body
    # The same documents again: nothing changes.
    assert client.patch(url, {"documents": [handbook.pk]}, format="json").json()["version"] == version
    assert Assistant.objects.get(pk=assistant.pk).version == version


def test_a_page_edit_makes_a_new_version_only_when_answers_would_change(assistant):
    def save(**changes):
        form = AssistantForm(instance=assistant, workspace=assistant.workspace)
        data = {name: form[name].value() for name in form.fields} | changes
        data = {name: value for name, value in data.items() if value is not None and value is not False}
        bound = AssistantForm(data, instance=Assistant.objects.get(pk=assistant.pk), workspace=assistant.workspace)
        assert bound.is_valid(), bound.errors
        return bound.save().version

    start = Assistant.objects.get(pk=assistant.pk).version
    assert save(description="Other words") == start
    assert save(instructions="Answer in one sentence.") == start + 1
