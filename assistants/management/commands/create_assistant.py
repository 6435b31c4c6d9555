from django.core.management.base import BaseCommand, CommandError

from assistants.forms import model_choices
from assistants.models import Assistant
from workspaces.models import Workspace


class Command(BaseCommand):
    help = "Create an assistant in a workspace (using all of its documents)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument("--instructions", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--model", default="", help="a configured model name (default: the default model)")

    def handle(self, slug, name, instructions, description, model, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug}")
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("The name must be 1 to 100 characters")
        if model and model not in dict(model_choices()):
            raise CommandError(f"Unknown model {model!r}; see the models in the gateway")
        if Assistant.objects.filter(workspace=workspace, name=name).exists():
            raise CommandError(f"{slug} already has an assistant named {name!r}")
        assistant = Assistant.objects.create(
            workspace=workspace, name=name, instructions=instructions, description=description, model_name=model
        )
        self.stdout.write(f"Created assistant {assistant.pk} “{assistant.name}” in {slug}")
