"""Cached page data: what every page shows, kept until a write to the rows it was read from.

The dashboard panels and the workspace list (workspaces with their member,
document and assistant counts, invitations, assistants, recent conversations)
are read on almost every page view. `cached(name, user, build)` keeps what
`build()` returns, for one user, under a key made of versions:

    pagecache:<name>:<user id>:<digest of the versions>

- a version per workspace the user belongs to, bumped by any write to the
  workspace or to its members, documents or assistants;
- a version per user, bumped when their memberships or conversations change;
- a version per email address, bumped when an invitation to it changes.

A write bumps the versions it touches (`bump_workspace`, `bump_user`,
`bump_email`, wired to model signals by each app with `invalidate_on_write`),
at once and again when its transaction commits, so the very next request
builds afresh; old entries are never read again and expire after
PAGE_CACHE_SECONDS (the backstop for writes that send no signal, such as
`QuerySet.update()` and `bulk_create`). The user's workspace ids come from
workspaces.permissions (one query, never cached), so a cached entry never
outlives a lost membership.

Version numbers start from the clock, so a version evicted from the cache
comes back as a number no old entry was keyed by. The cache is Redis: with
the per-process local-memory cache (no REDIS_URL) one worker could not tell
another that a row changed, so page data is then not cached (except in
tests, which run in one process).
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import caches
from django.db import transaction

from corporate.observability import metrics, timeline

_MISSING = object()


def enabled():
    return settings.PAGE_CACHE_SECONDS > 0 and (bool(settings.REDIS_URL) or settings.TESTING)


def _cache():
    return caches["default"]


def _user_key(user_id):
    return f"pagecache:v:user:{user_id}"


def _workspace_key(workspace_id):
    return f"pagecache:v:ws:{workspace_id}"


def _email_key(email):
    return "pagecache:v:email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]


def _fresh_version():
    return time.time_ns()


def versions(keys):
    """The current version of each key (made now for those the cache does not hold)."""
    cache = _cache()
    found = cache.get_many(keys)
    missing = {key: _fresh_version() for key in keys if found.get(key) is None}
    if missing:
        # A fresh number is new whatever happened meanwhile, so it may overwrite a concurrent bump.
        cache.set_many(missing, None)
        found.update(missing)
    return [found[key] for key in keys]


def cached(name, user, build):
    """What `build()` returns for this user, from the cache while none of the rows it reads has changed."""
    if not enabled() or not getattr(user, "is_authenticated", False):
        return build()
    from workspaces.permissions import workspace_ids

    keys = [_user_key(user.pk), _email_key(user.email), *(_workspace_key(i) for i in sorted(workspace_ids(user)))]
    try:
        digest = hashlib.sha1(repr(list(zip(keys, versions(keys), strict=True))).encode()).hexdigest()[:16]
        key = f"pagecache:{name}:{user.pk}:{digest}"
        value = _cache().get(key, _MISSING)
    except Exception:  # the cache is down: build from the database
        return build()
    if value is not _MISSING:
        _count("hit")
        return value
    _count("miss")
    value = build()
    try:
        _cache().set(key, value, settings.PAGE_CACHE_SECONDS)
    except Exception:
        pass
    return value


def _count(outcome):
    timeline.count(f"page_cache_{outcome}")
    metrics.count_page_cache(outcome)


def _bump(key):
    def bump():
        cache = _cache()
        try:
            cache.incr(key)
        except ValueError:  # not held: any fresh number is a new version
            cache.set(key, _fresh_version(), None)
        except Exception:  # the cache is down; entries expire by themselves
            pass

    bump()
    if transaction.get_connection().in_atomic_block:
        # Again once the rows are committed: a request that read the old rows
        # after the first bump must not have its entry taken for the new ones.
        transaction.on_commit(bump)


def bump_workspace(workspace_id):
    if workspace_id is not None and enabled():
        _bump(_workspace_key(workspace_id))


def bump_user(user_id):
    if user_id is not None and enabled():
        _bump(_user_key(user_id))


def bump_email(email):
    if email and enabled():
        _bump(_email_key(email))


def invalidate_on_write(model, *, workspace=None, user=None, email=None, created_only=False):
    """Bump versions whenever a row of `model` is saved or deleted.

    workspace, user, email: functions of the row giving the workspace id, user id or email it touches.
    created_only: a save counts only when it adds a row (rows saved again and again, such as messages).
    """
    from django.db.models.signals import post_delete, post_save

    def on_write(sender, instance, created=True, **kwargs):
        if created_only and not created:
            return
        if workspace is not None:
            bump_workspace(workspace(instance))
        if user is not None:
            bump_user(user(instance))
        if email is not None:
            bump_email(email(instance))

    uid = f"pagecache.{model._meta.label}"
    post_save.connect(on_write, sender=model, weak=False, dispatch_uid=uid + ".save")
    post_delete.connect(on_write, sender=model, weak=False, dispatch_uid=uid + ".delete")
