"""Demo assistant: an HR and policies helpdesk over the demo documents."""

from assistants.models import Assistant
from workspaces.models import Workspace

INSTRUCTIONS = (
    "You are the Brightwater helpdesk. Answer staff questions about HR, travel and IT policies "
    "briefly and precisely, quoting the policy that applies. If the documents do not cover a question, "
    "say so and suggest contacting hr@brightwater.example."
)


def populate(admin):
    workspace = Workspace.objects.filter(slug="demo").first()
    if workspace is None:
        return []
    Assistant.objects.get_or_create(
        workspace=workspace,
        name="HR helpdesk",
        defaults={
            "description": "Answers questions about vacation, expenses, travel and IT from the company policies.",
            "instructions": INSTRUCTIONS,
            "created_by": admin,
            "passages": 4,
            "starter_questions": [
                "How many vacation days do employees get?",
                "What can I claim for meals when travelling?",
                "How do I connect to the VPN?",
            ],
        },
    )
    return []
