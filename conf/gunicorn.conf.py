"""gunicorn settings for Darkserver: `gunicorn -c conf/gunicorn.conf.py darkserver.wsgi`."""

import multiprocessing
import os

bind = os.environ.get("DARKSERVER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("DARKSERVER_WORKERS", multiprocessing.cpu_count()))
# gthread keeps client connections alive, which matters for crash tools sending many lookups;
# the sync worker closes every connection (bench/bench_lookup.py, docs/BENCHMARKS.md). Two
# threads per worker did best on SQLite and as well as one on MariaDB; four were slower on both
# (GIL contention, no spare cores).
worker_class = os.environ.get("DARKSERVER_WORKER_CLASS", "gthread")
threads = int(os.environ.get("DARKSERVER_THREADS", "2"))
keepalive = 5
# Recycle workers now and then so a slow leak never grows; jitter avoids all restarting at once.
max_requests = 100000
max_requests_jitter = 10000
timeout = 30
accesslog = os.environ.get("DARKSERVER_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("DARKSERVER_LOG_LEVEL", "warning").lower()
preload_app = True
