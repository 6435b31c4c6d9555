"""Each database has its own installation id, and the cache is namespaced by it.

Workspace ids restart at 1 in every database, so two databases sharing one
Redis database (a recreated database, staging beside production) would
otherwise read each other's cached answers.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from llmgateway import gateway

ROOT = Path(__file__).resolve().parents[2]
REQUEST = {
    "model": "offline",
    "messages": [{"role": "user", "content": "What is the refund policy?"}],
    "temperature": 0,
}

# Another installation: its own new database, the same Redis database, the same workspace id.
OTHER_INSTALLATION = """
import json, sys, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from corporate.models import User
from workspaces.models import Workspace
from llmgateway import gateway
owner = User.objects.create_user("other@example.com", "other installation secret")
Workspace.objects.create(pk=int(sys.argv[1]), name="Other", slug="other", created_by=owner)
print(json.dumps({"hit": gateway.complete(int(sys.argv[1]), json.loads(sys.argv[2])).cache_hit}))
"""


@pytest.fixture
def second_database(tmp_path):
    """The URL of a new, empty database next to the test database (same engine)."""
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'second.sqlite3'}"
        return
    import psycopg2

    params = connection.settings_dict
    name = f"{params['NAME']}_second"
    admin = psycopg2.connect(
        dbname="postgres", user=params["USER"], password=params["PASSWORD"], host=params["HOST"], port=params["PORT"]
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    password = f":{params['PASSWORD']}" if params["PASSWORD"] else ""
    yield f"postgres://{params['USER']}{password}@{params['HOST']}:{params['PORT'] or 5432}/{name}"
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_a_second_database_on_the_same_redis_does_not_read_the_first_ones_answers(
    redis_cache, second_database, workspace
):
    assert not gateway.complete(workspace, REQUEST).cache_hit
    assert gateway.complete(workspace, REQUEST).cache_hit  # cached in Redis for this database

    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DATABASE_URL=second_database,
        REDIS_URL=redis_cache.url(9),
        CACHE_KEY_PREFIX=settings.CACHE_KEY_PREFIX,
        DJANGO_SETTINGS_MODULE="corporate.settings",
    )
    result = subprocess.run(
        [sys.executable, "-c", OTHER_INSTALLATION, str(workspace.pk), json.dumps(REQUEST)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"hit": False}
    # And this database still has its own answer.
    assert gateway.complete(workspace, REQUEST).cache_hit


def test_new_installation_id_gives_a_copied_database_its_own_entries(workspace, capsys):
    from django.core.management import call_command

    from corporate import installation

    assert not gateway.complete(workspace, REQUEST).cache_hit
    assert gateway.complete(workspace, REQUEST).cache_hit
    old = installation.current()
    call_command("new_installation_id", "--dry-run")
    assert installation.current() == old and old in capsys.readouterr().out
    try:
        call_command("new_installation_id")
        assert installation.current() != old
        assert installation.current() in capsys.readouterr().out
        assert not gateway.complete(workspace, REQUEST).cache_hit
    finally:
        installation._current = old  # the rest of the run keeps the test database's id
