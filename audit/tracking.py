"""Record creation, changes and deletion of a model's rows, whichever path made them.

Each app registers its models in its AppConfig.ready():

    from audit.tracking import track
    track(Document, fields=["title", "original_name", "kind", "size"])

Only the listed `fields` are compared and recorded (so text, keys and hashes
never reach the log unless listed); `secret` fields are recorded as changed,
with their values hidden. Pages, the API, the admin and commands all save
through the ORM, so all of them are covered; a queryset `update()` sends no
signal and needs an explicit `audit.record()` where it matters. Rows deleted
because their workspace is deleted are not recorded one by one: the
workspace's deletion stands for them.
"""

import contextvars

from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

import audit

_deleting_workspaces = contextvars.ContextVar("audit_deleting_workspaces", default=frozenset())


class Tracker:
    def __init__(self, model, *, name, fields, secret, action, create, delete, describe):
        self.model = model
        self.name = name
        self.attnames = [model._meta.get_field(f).attname for f in fields]
        self.secret = [model._meta.get_field(f).attname for f in secret]
        self.action = action
        self.create = create
        self.delete = delete
        self.describe = describe
        self.is_workspace = model._meta.label_lower == "workspaces.workspace"
        names = list(fields) + list(secret)
        self.watched_names = set(names) | set(self.attnames) | set(self.secret)

    def _values(self, instance):
        return {name: getattr(instance, name) for name in self.attnames + self.secret}

    def obj(self, instance):
        if self.describe is None:
            return instance
        return (self.model._meta.model_name, instance.pk, self.describe(instance))

    def pre_save(self, sender, instance, raw=False, update_fields=None, **kwargs):
        instance._audit_before = None
        if raw or instance._state.adding or instance.pk is None:
            return
        watched = self.attnames + self.secret
        if update_fields is not None and not set(update_fields) & self.watched_names:
            return
        instance._audit_before = self.model._base_manager.filter(pk=instance.pk).values(*watched).first()

    def post_save(self, sender, instance, created, raw=False, **kwargs):
        if raw:
            return
        after = self._values(instance)
        if created:
            if not self.create:
                return
            changes = {
                k: [None, v] for k, v in after.items() if k in self.attnames and v not in (None, "", [], {}, False)
            }
            changes.update({k: [None, audit.HIDDEN] for k in self.secret if after[k]})
            self._record("create", instance, changes)
            return
        before = getattr(instance, "_audit_before", None)
        instance._audit_before = None
        if before is None:
            return
        changes = {k: [before[k], after[k]] for k in self.attnames if before[k] != after[k]}
        changes.update({k: [audit.HIDDEN, audit.HIDDEN] for k in self.secret if before[k] != after[k]})
        if changes:
            self._record("update", instance, changes)

    def pre_delete(self, sender, instance, **kwargs):
        if self.is_workspace:
            _deleting_workspaces.set(_deleting_workspaces.get() | {instance.pk})

    def post_delete(self, sender, instance, **kwargs):
        if self.is_workspace:
            _deleting_workspaces.set(_deleting_workspaces.get() - {instance.pk})
        elif getattr(instance, "workspace_id", None) in _deleting_workspaces.get():
            return
        if self.delete:
            self._record("delete", instance, {})

    def _record(self, verb, instance, changes):
        action = (self.action(verb, instance, changes) if self.action else None) or f"{self.name}.{verb}"
        audit.record(None, action, workspace=self.workspace(instance), obj=self.obj(instance), changes=changes)

    def workspace(self, instance):
        if self.is_workspace:
            return instance
        if not hasattr(instance, "workspace_id"):
            return None
        cached = instance._state.fields_cache.get("workspace")
        return cached if cached is not None else instance.workspace_id


def track(model, *, fields, secret=(), name=None, action=None, create=True, delete=True, describe=None):
    """Record `model`'s creations, changes of `fields` and deletions as "<name>.create/update/delete".

    `action(verb, instance, changes)` may return a more telling action name
    (e.g. "user.deactivate"), or None for the default; `describe(instance)`
    gives the object's text when str() would show something secret.
    """
    tracker = Tracker(
        model,
        name=name or model._meta.model_name,
        fields=fields,
        secret=secret,
        action=action,
        create=create,
        delete=delete,
        describe=describe,
    )
    uid = f"audit.track.{model._meta.label_lower}"
    pre_save.connect(tracker.pre_save, sender=model, weak=False, dispatch_uid=uid)
    post_save.connect(tracker.post_save, sender=model, weak=False, dispatch_uid=uid)
    pre_delete.connect(tracker.pre_delete, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(tracker.post_delete, sender=model, weak=False, dispatch_uid=uid)
    return tracker
