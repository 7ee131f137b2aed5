"""gunicorn settings for Darkserver:
`gunicorn -c conf/gunicorn.conf.py darkserver.asgi:application` (the app is also the default)."""

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

from darkcore import settings

bind = settings.BIND.get()
workers = settings.WORKERS.get() or multiprocessing.cpu_count()
# uvicorn's worker (httptools, uvloop) serving darkserver.asgi: its HTTP layer costs a fraction
# of gunicorn's threaded one, which was most of a lookup's time (docs/BENCHMARKS.md: ~19,600
# against ~5,300 lookups/s on 2 cores, SQLite). The hot lookups run on its event loop
# (lookup/fastpath_asgi.py), the rest in Django's thread. darkserver.httpedge.EdgeWorker is that
# worker with bounded request heads, a read timeout (DARKSERVER_READ_TIMEOUT) and JSON errors
# for what the HTTP parser rejects. The WSGI setup (Django alone) stays available:
# DARKSERVER_WORKER_CLASS=gthread with darkserver.wsgi as the app.
worker_class = settings.WORKER_CLASS.get()
threads = settings.THREADS.get()  # gthread only
wsgi_app = "darkserver.asgi:application"  # the app named on the command line wins
keepalive = 5
# Recycle workers now and then so a slow leak never grows; jitter avoids all restarting at once.
# A worker answers up to ~8,000 lookups/s: 10^5 restarted each every ~12 s under load (reset
# connections, cold caches); 2*10^6 is a few minutes at full load, days at a usual one.
max_requests = 2_000_000
max_requests_jitter = 200_000
timeout = 30
accesslog = settings.ACCESS_LOG.get() or None
errorlog = "-"
loglevel = settings.LOG_LEVEL.get().lower()
preload_app = True

# /metrics adds up every worker's numbers, including those of workers already recycled:
# prometheus_client's multiprocess mode, each worker writing its values to files in one
# directory. It must be set before the app (and prometheus_client) is imported, which
# preload_app does after reading this file. DARKSERVER_METRICS_DIR names the directory (emptied
# at start); by default a private one is made and removed at exit.
_metrics_dir = settings.METRICS_DIR.get()
_own_metrics_dir = not _metrics_dir
if not _metrics_dir:
    _metrics_dir = tempfile.mkdtemp(prefix="darkserver-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    # Values of an earlier run would be added to this one's.
    for stale in Path(_metrics_dir).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
