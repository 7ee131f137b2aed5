"""gunicorn settings for Darkserver:
`gunicorn -c conf/gunicorn.conf.py darkserver.asgi:application` (the app is also the default)."""

import multiprocessing
import os

bind = os.environ.get("DARKSERVER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("DARKSERVER_WORKERS", multiprocessing.cpu_count()))
# uvicorn's worker (httptools, uvloop) serving darkserver.asgi: its HTTP layer costs a fraction
# of gunicorn's threaded one, which was most of a lookup's time (docs/BENCHMARKS.md: ~19,600
# against ~5,300 lookups/s on 2 cores, SQLite). The hot lookups run on its event loop
# (lookup/fastpath_asgi.py), the rest in Django's thread. The WSGI setup stays available:
# DARKSERVER_WORKER_CLASS=gthread with darkserver.wsgi as the app.
worker_class = os.environ.get("DARKSERVER_WORKER_CLASS", "uvicorn_worker.UvicornWorker")
threads = int(os.environ.get("DARKSERVER_THREADS", "2"))  # gthread only
wsgi_app = "darkserver.asgi:application"  # the app named on the command line wins
keepalive = 5
# Recycle workers now and then so a slow leak never grows; jitter avoids all restarting at once.
# A worker answers up to ~8,000 lookups/s: 10^5 restarted each every ~12 s under load (reset
# connections, cold caches); 2*10^6 is a few minutes at full load, days at a usual one.
max_requests = 2_000_000
max_requests_jitter = 200_000
timeout = 30
accesslog = os.environ.get("DARKSERVER_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("DARKSERVER_LOG_LEVEL", "warning").lower()
preload_app = True
