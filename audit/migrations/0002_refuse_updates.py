"""The database itself refuses to change an audit event (deleting old ones stays possible for prune_audit)."""

from django.db import migrations

POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION audit_auditevent_refuse_update() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit events cannot be changed';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_refuse_update()
    """,
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_auditevent_no_update ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_auditevent_refuse_update()",
]
SQLITE = [
    """
    CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events cannot be changed'); END
    """,
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS audit_auditevent_no_update"]


def forwards(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(schema_editor.connection.vendor, [])
    for sql in statements:
        schema_editor.execute(sql)


def backwards(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}.get(schema_editor.connection.vendor, [])
    for sql in statements:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
