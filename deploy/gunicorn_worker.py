"""The gunicorn worker: gevent, with psycopg2 made cooperative.

gunicorn's gevent worker monkey-patches the standard library in `patch()`,
which runs in the forked worker before the application is loaded (the app is
not preloaded, and deploy/gunicorn.conf.py imports neither Django nor a
database driver). This worker sets psycopg2's wait callback in the same
step, so both happen once, before Django, psycopg2's users or redis-py are
imported, and a query waiting on PostgreSQL lets other requests run.
"""

from gunicorn.workers.ggevent import GeventWorker


class Worker(GeventWorker):
    def patch(self):
        super().patch()  # gevent.monkey.patch_all(), and gevent sockets for the listeners
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
