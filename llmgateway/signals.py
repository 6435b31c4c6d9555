"""Keep the request path's cached views of the database honest.

Cached key info, model specs and workspace info are dropped whenever what
they were built from changes, so a revoked key, a deactivated creator, a
removed member, a changed model or a new cache policy counts on the very
next request while Redis answers. Key info does not depend on these
signals: it is checked against the database every 5 seconds (auth.py), so
a change made while Redis was down, or one that sent no signal (a queryset
`update()`, SQL), still counts within 5 seconds.
"""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from audit.tracking import track
from corporate.signals import user_deactivated
from llmgateway import auth, registry
from llmgateway.cache import entries
from llmgateway.models import ApiKey, CacheGeneration, Limit, ModelConfig
from workspaces.models import Membership, Workspace


@receiver(user_deactivated)
def revoke_keys_of_deactivated_user(sender, user, **kwargs):
    """Deactivation revokes the user's keys (each in the audit log), so activating the account again revives none."""
    for key in ApiKey.objects.filter(created_by=user, revoked_at__isnull=True):
        key.revoke()
    auth.forget_keys_of(user.pk)


@receiver([post_save, post_delete], sender=Membership)
def forget_keys_on_membership_change(sender, instance, **kwargs):
    auth.forget_keys_of(instance.user_id, instance.workspace_id)


@receiver([post_save, post_delete], sender=ApiKey)
def forget_changed_key(sender, instance, **kwargs):
    auth.forget_keys([instance.key_hash])


@receiver([post_save, post_delete], sender=Workspace)
@receiver([post_save, post_delete], sender=CacheGeneration)
def forget_workspace_info(sender, instance, **kwargs):
    entries.forget_workspace(instance.pk)


@receiver(pre_save, sender=ModelConfig)
def remember_model_name(sender, instance, **kwargs):
    if instance.pk:
        instance._old_name = ModelConfig.objects.filter(pk=instance.pk).values_list("name", flat=True).first()


@receiver([post_save, post_delete], sender=ModelConfig)
def forget_model_specs(sender, instance, **kwargs):
    registry.forget_all()
    old = getattr(instance, "_old_name", None)
    if old:
        registry.forget_name(old)


@receiver([post_save, post_delete], sender=Limit)
def forget_limited_records(sender, instance, **kwargs):
    """Limits ride on the workspace's and the key's cached records: drop those."""
    if instance.api_key_id:
        key_hash = ApiKey.objects.filter(pk=instance.api_key_id).values_list("key_hash", flat=True).first()
        if key_hash:
            auth.forget_keys([key_hash])
    elif instance.workspace_id:
        entries.forget_workspace(instance.workspace_id)
    else:
        entries.workspace_info.forget(*Workspace.objects.values_list("pk", flat=True))


# The audit log: API keys (never their text or hash) and model configuration (the stored key hidden).


def _key_action(verb, key, changes):
    if verb == "update" and "revoked_at" in changes and key.revoked_at:
        return "api_key.revoke"
    return None


track(
    ApiKey,
    name="api_key",
    fields=["name", "scopes", "expires_at", "revoked_at"],
    action=_key_action,
    describe=lambda key: key.name,
)
track(
    ModelConfig,
    name="model",
    fields=list(ModelConfig.SETTINGS),
    secret=["api_key_encrypted"],
)
track(
    Limit,
    name="limit",
    fields=["kind", "user", "api_key", "rpm", "tpm", "max_concurrent", "daily_budget", "monthly_budget"],
)
