"""A deactivated user loses every session and API token at once; a new password ends the API tokens.

Sessions need no sweep: on every request the auth middleware reloads the
user and ModelBackend refuses an inactive one, so the session is dead on the
very next request; deactivation also bumps the user's session generation,
which is part of the session hash, so those sessions stay dead if the
account is activated again. Tokens are deleted, and `user_deactivated` lets other
apps (API keys, caches) drop theirs.

A new password (the password page, a reset link, the admin, `changepassword`,
`set_password()` and `save()`) deletes the account's API tokens, so a token
taken with the old password stops working; so does turning the password off
(`set_unusable_password()`: OIDC_DISABLE_LOCAL_PASSWORDS at an SSO sign-in,
the admin). A save that does not write the password keeps them. Sessions
need nothing here: the password is part of the session hash, and Django
keeps the session the password was changed in (update_session_auth_hash).
"""

from django.contrib.auth.hashers import is_password_usable
from django.db.models.signals import post_save, pre_save
from django.dispatch import Signal, receiver

from corporate.models import User

user_deactivated = Signal()


@receiver(pre_save, sender=User)
def remember_active_state(sender, instance, **kwargs):
    stored = User.objects.filter(pk=instance.pk).values_list("is_active", "password").first() if instance.pk else None
    instance._was_active = stored[0] if stored else None
    instance._had_usable_password = bool(stored) and is_password_usable(stored[1])
    if instance._was_active and not instance.is_active:
        # Voids every existing session (the session hash includes it), also after reactivation.
        instance.session_generation += 1


@receiver(post_save, sender=User)
def revoke_credentials_on_deactivation(sender, instance, created, **kwargs):
    if created or instance.is_active or not getattr(instance, "_was_active", False):
        return
    from rest_framework.authtoken.models import Token

    Token.objects.filter(user=instance).delete()
    user_deactivated.send(sender=User, user=instance)


@receiver(post_save, sender=User)
def revoke_tokens_on_new_password(sender, instance, created, **kwargs):
    # set_password() keeps the new password in _password until the save is done; a hash upgraded at
    # sign-in (the same password, more iterations) is saved without it and keeps the tokens. A usable
    # password made unusable (set_unusable_password() keeps no _password) ends them too.
    update_fields = kwargs.get("update_fields")
    if created or (update_fields is not None and "password" not in update_fields):
        return
    turned_off = getattr(instance, "_had_usable_password", False) and not instance.has_usable_password()
    if getattr(instance, "_password", None) is None and not turned_off:
        return
    from rest_framework.authtoken.models import Token

    Token.objects.filter(user=instance).delete()
