from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sso.models import IdentityProvider


def add_provider(slug, *, issuer, client_id, secret_env, name=None, groups_claim=None, scopes=None, domains=None):
    """Create or update the provider; (provider, created)."""
    provider = IdentityProvider.objects.filter(slug=slug).first() or IdentityProvider(slug=slug)
    created = provider.pk is None
    provider.name = name or provider.name or slug.title()
    provider.issuer = issuer.rstrip("/")
    provider.client_id = client_id
    provider.client_secret_env = secret_env
    if groups_claim is not None:
        provider.groups_claim = groups_claim
    if scopes is not None:
        provider.scopes = scopes
    if domains is not None:
        provider.allowed_domains = domains
    provider.full_clean()
    provider.save()
    return provider, created


class Command(BaseCommand):
    help = "Add (or update) an OpenID Connect provider whose client secret is read from an environment variable."

    def add_arguments(self, parser):
        parser.add_argument("name", help="slug: lowercase letters, digits and dashes")
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--client-secret-env", required=True, help="the variable that holds the secret")
        parser.add_argument("--groups-claim")
        parser.add_argument("--display-name", help='shown on the button: "Sign in with ..."')
        parser.add_argument("--scopes", help='space separated, default "openid email profile"')
        parser.add_argument("--allowed-domains", help="comma-separated email domains")

    def handle(self, *args, **options):
        import os

        if not os.environ.get(options["client_secret_env"]):
            self.stderr.write(f"warning: {options['client_secret_env']} is not set in this environment")
        try:
            provider, created = add_provider(
                options["name"].lower(),
                issuer=options["issuer"],
                client_id=options["client_id"],
                secret_env=options["client_secret_env"],
                name=options["display_name"],
                groups_claim=options["groups_claim"],
                scopes=options["scopes"],
                domains=options["allowed_domains"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        verb = "Added" if created else "Updated"
        self.stdout.write(
            f"{verb} {provider.name} ({provider.slug}); callback path /accounts/sso/{provider.slug}/callback/"
        )
