"""What the site does with its database, caches and workers, for operators.

- queries: every query timed (Django's `execute_wrapper`); per-request counts
  and database time; the slow-query log with each query's origin.
- middleware: the per-request figures in `Server-Timing`, the access log and
  the metrics.
- metrics: Prometheus metrics (`prometheus-client`, multiprocess under
  gunicorn) and `GET /metrics`.
- timeline: per-minute counts over the last hour, shared by every process,
  for the System page's charts.
- system: what the System page and `manage.py dbstats` show.
"""
