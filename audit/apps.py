from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self):
        from audit import signals  # noqa: F401
        from workspaces.navigation import tab

        tab(
            "audit",
            "Audit",
            "audit:workspace",
            action="view_audit",
            order=80,
            description="Who did what in this workspace, and when.",
        )
