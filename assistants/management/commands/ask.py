from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from assistants import answering
from assistants.models import Assistant, Conversation
from corporate.api import parse_id
from workspaces.models import Membership, Workspace


class Command(BaseCommand):
    help = "Ask an assistant a question; prints the answer and its citations."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("assistant", help="the assistant's name or id")
        parser.add_argument("question")
        parser.add_argument("--as", dest="email", help="the member who asks (default: the workspace's first owner)")

    def handle(self, slug, assistant, question, email, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug}")
        found = Assistant.objects.filter(workspace=workspace)
        pk = parse_id(assistant)
        found = found.filter(pk=pk) if pk is not None else found.filter(name__iexact=assistant)
        found = found.first()
        if found is None:
            raise CommandError(f"No assistant {assistant!r} in {slug}")
        user = self._asker(workspace, email)
        conversation = Conversation.objects.create(assistant=found, user=user)
        try:
            turn = answering.start_turn(found, conversation, user, question)
            message = turn.run()
        except answering.AnswerError as exc:
            conversation.delete()
            raise CommandError(exc.message) from None
        self.stdout.write(message.content)
        if message.citations:
            self.stdout.write("")
            self.stdout.write("Sources:")
            for c in message.citations:
                where = f", {c['location']}" if c["location"] else ""
                self.stdout.write(f"  [{c['n']}] {c['title']}{where}")
        self.stdout.write("")
        self.stdout.write(
            f"({'cache hit' if message.cache_hit else 'cache miss'}, {message.latency_ms} ms, {message.total_tokens} tokens)"
        )

    def _asker(self, workspace, email):
        if email:
            user = get_user_model().objects.filter(email__iexact=email).first()
            if user is None or not Membership.objects.filter(workspace=workspace, user=user).exists():
                raise CommandError(f"{email} is not a member of {workspace.slug}")
            return user
        membership = Membership.objects.filter(workspace=workspace, role="owner").select_related("user").first()
        if membership is None:
            raise CommandError(f"{workspace.slug} has no owner to ask as; use --as EMAIL")
        return membership.user
