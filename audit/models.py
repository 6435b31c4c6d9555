"""The audit log: one append-only row per thing that happened.

A row keeps copies of who and where (the actor's email, the workspace's
slug) beside their ids, with no foreign keys: users and workspaces are
deleted, their history stays. Rows are never changed; the only way to
remove them is `manage.py prune_audit`, after AUDIT_RETENTION_DAYS.
"""

from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """Raised on any attempt to change or delete an audit event through the ORM."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("Audit events cannot be changed.")

    def delete(self):
        raise AppendOnly("Audit events cannot be deleted; prune_audit removes old ones.")

    def for_listing(self):
        """The audit pages and the export: newest first (the ordering every list index ends with)."""
        return self.order_by("-created_at", "-id")

    def older_than(self, cutoff):
        return self.filter(created_at__lt=cutoff)

    def prune(self):
        """Delete these rows (the prune command's path, nothing else's); the number deleted."""
        deleted, _ = models.QuerySet.delete(self.order_by())
        return deleted


class AuditEvent(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Who: a user's id and email at the time; both empty for the system (commands, tasks).
    actor_id = models.BigIntegerField(null=True, blank=True, editable=False)
    actor_email = models.CharField(max_length=254, blank=True, editable=False)
    action = models.CharField(max_length=64, editable=False)
    # Where: the workspace's id and slug at the time; empty for site-wide events.
    workspace_id = models.BigIntegerField(null=True, blank=True, editable=False)
    workspace_slug = models.CharField(max_length=50, blank=True, editable=False)
    # What: the object acted on.
    object_type = models.CharField(max_length=64, blank=True, editable=False)
    object_id = models.CharField(max_length=64, blank=True, editable=False)
    object_repr = models.CharField(max_length=200, blank=True, editable=False)
    # {"field": [before, after]} for the fields that changed; secrets appear as "[hidden]".
    changes = models.JSONField(default=dict, blank=True, editable=False)
    # Anything else worth knowing (the sign-in backend, an admin's change message).
    details = models.JSONField(default=dict, blank=True, editable=False)
    ip_address = models.GenericIPAddressField(null=True, blank=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # staff audit page and export, unfiltered, newest first; prune_audit's cut-off.
            models.Index(fields=["-created_at", "-id"], name="audit_event_created"),
            # workspace audit page: one workspace's events, newest first.
            models.Index(fields=["workspace_id", "-created_at", "-id"], name="audit_event_workspace"),
            # the staff page's workspace filter, by slug (a deleted workspace's events keep theirs).
            models.Index(fields=["workspace_slug", "-created_at", "-id"], name="audit_event_workspace_slug"),
            # the actor filter; a user's page: what they did.
            models.Index(fields=["actor_email", "-created_at", "-id"], name="audit_event_actor"),
            # the action filter across the site.
            models.Index(fields=["action", "-created_at", "-id"], name="audit_event_action"),
            # the object-type filter.
            models.Index(fields=["object_type", "-created_at", "-id"], name="audit_event_object_type"),
            # a user's page: what was done to them (type "user", their id).
            models.Index(fields=["object_type", "object_id", "-created_at", "-id"], name="audit_event_object"),
        ]

    def __str__(self):
        who = self.actor_email or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.object_repr}".strip()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("Audit events cannot be deleted; prune_audit removes old ones.")

    @property
    def actor_label(self):
        return self.actor_email or "system"

    @property
    def change_list(self):
        """[(field, before, after)] for templates."""
        return [(field, *values) for field, values in sorted(self.changes.items()) if len(values) == 2]
