from django.apps import AppConfig


class CorporateConfig(AppConfig):
    name = "corporate"
    verbose_name = "Accounts"

    def ready(self):
        from django.db.backends.signals import connection_created
        from django_tasks.signals import task_finished, task_started

        from corporate import signals  # noqa: F401
        from corporate.observability import queries

        # Every query timed (the slow-query log, per-request counts); tasks are their queries' origin.
        connection_created.connect(queries.install, dispatch_uid="corporate.observability.queries")
        task_started.connect(queries.task_started, dispatch_uid="corporate.observability.task_started")
        task_finished.connect(queries.task_finished, dispatch_uid="corporate.observability.task_finished")
