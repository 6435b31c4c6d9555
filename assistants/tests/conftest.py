import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

HANDBOOK = """# Employee handbook

## Vacation

Every employee gets 27 vacation days a year. Unused vacation days expire on 31 March of the next year.

## Expenses

Meals are reimbursed up to 60 euros a day when travelling. Keep every receipt for the expense report.
"""

IT_FAQ = """# IT FAQ

## VPN

Install the Connect client and sign in with your staff account. The VPN gateway is vpn.northwind.example.
"""


@pytest.fixture
def add_document(django_capture_on_commit_callbacks):
    """Upload a Markdown document and run its ingestion; returns it ready."""

    def add(workspace, name, text, user=None):
        from documents.ingestion import accept_upload
        from documents.models import Document

        with django_capture_on_commit_callbacks(execute=True):
            document = accept_upload(workspace, SimpleUploadedFile(name, text.encode(), "text/markdown"), user)
        document = Document.objects.get(pk=document.pk)
        assert document.status == "ready", (document.status, document.failure_reason)
        return document

    return add


@pytest.fixture
def handbook(workspace, member, add_document):
    return add_document(workspace, "handbook.md", HANDBOOK, member)


@pytest.fixture
def it_faq(workspace, member, add_document):
    return add_document(workspace, "it-faq.md", IT_FAQ, member)


@pytest.fixture
def assistant(workspace, member, handbook, it_faq):
    from assistants.models import Assistant

    return Assistant.objects.create(
        workspace=workspace,
        name="Helpdesk",
        description="Policies",
        instructions="Answer briefly.",
        created_by=member,
    )


def read_events(response):
    """Parse a server-sent-events response into [(event, data)]."""
    body = b"".join(response.streaming_content).decode()
    events = []
    for block in body.strip().split("\n\n"):
        event, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((event, json.loads("\n".join(data))))
    return events


@pytest.fixture
def ask_page():
    """POST a question to the chat page's endpoint; returns the parsed events."""

    def ask(client, assistant, question, conversation=None, regenerate=False, answer=None):
        data = {"question": question}
        if conversation:
            data["conversation"] = conversation
        if regenerate:
            data["regenerate"] = "1"
        if answer:
            data["answer"] = answer
        response = client.post(f"/assistants/{assistant.workspace.slug}/{assistant.pk}/ask/", data)
        if response.status_code != 200:
            # Refused before any stream started: a JSON reason, as one "refused" event.
            assert response["Content-Type"] == "application/json", response
            return [("refused", {"status": response.status_code, **response.json()})]
        assert response["Content-Type"].startswith("text/event-stream")
        return read_events(response)

    return ask
