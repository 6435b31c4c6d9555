from django.apps import AppConfig


class CorporateConfig(AppConfig):
    name = "corporate"
    verbose_name = "Accounts"

    def ready(self):
        from django.core.signals import request_finished
        from django.db.backends.signals import connection_created
        from django_tasks.signals import task_finished, task_started

        from corporate import admin_lists, signals  # noqa: F401
        from corporate.observability import metrics, queries, timeline

        # Every query timed (the slow-query log, per-request counts); tasks are their queries' origin.
        connection_created.connect(queries.install, dispatch_uid="corporate.observability.queries")
        task_started.connect(queries.task_started, dispatch_uid="corporate.observability.task_started")
        task_finished.connect(queries.task_finished, dispatch_uid="corporate.observability.task_finished")
        # Per-minute figures and pool statistics are written after the request has given its connection back.
        request_finished.connect(timeline.flush_when_due, dispatch_uid="corporate.observability.timeline")
        request_finished.connect(metrics.flush_when_due, dispatch_uid="corporate.observability.metrics")
        admin_lists.install()  # a filter value the database cannot take is a bad lookup, not a 500
