"""The installation id: which database this process serves, in every cache key.

Workspace ids, user ids and the like restart at 1 in every database, so two
databases that share one Redis database (a recreated database, staging
beside production) would read each other's cached entries. Each database
gets a random id when it is created (the `Installation` row, made by a
migration); the cache's KEY_FUNCTION puts it into every key:

    <CACHE_KEY_PREFIX>:<installation id>:<version>:<key>

It is read from the database on the first cache operation of a process (not
at settings import: there is no database then) and kept for the life of the
process.

A copy of a database (a backup restored beside the original) keeps the
original's id; give the copy its own with `manage.py new_installation_id`,
then restart its processes.
"""

import secrets

_current = None
# Keys made while the database cannot be read (down, not migrated yet): this
# process's alone, so no other process or database ever reads those entries.
_UNSHARED = "unshared-" + secrets.token_hex(6)


def load(using="default"):
    """The id recorded in the database `using` (creating the row if a flush emptied the table)."""
    from corporate.models import Installation

    row, _ = Installation.objects.using(using).get_or_create(pk=1)
    return row.uuid.hex[:16]


def current():
    """This process's installation id; reads the database once."""
    global _current
    if _current is None:
        _current = load()
    return _current


def known():
    """Whether this process has read the id already (so a cache key costs no query)."""
    return _current is not None


def make_key(key, key_prefix, version):
    """Django's cache KEY_FUNCTION: Django's default key with the installation id after the prefix."""
    installation = _current
    if installation is None:
        try:
            installation = current()
        except Exception:  # no database to ask (yet): never share, ask again next time
            installation = _UNSHARED
    return f"{key_prefix}:{installation}:{version}:{key}"


def forget():
    """Read the id again on next use (after `new_installation_id`, and in tests)."""
    global _current
    _current = None
