"""gunicorn settings for Darkserver:
`gunicorn -c conf/gunicorn.conf.py darkserver.asgi:application` (the app is also the default)."""

import multiprocessing

from darkcore import settings

bind = settings.BIND.get()
workers = settings.WORKERS.get() or multiprocessing.cpu_count()
# uvicorn's worker (httptools, uvloop) serving darkserver.asgi: its HTTP layer costs a fraction
# of gunicorn's threaded one, which was most of a lookup's time (docs/BENCHMARKS.md: ~19,600
# against ~5,300 lookups/s on 2 cores, SQLite). The hot lookups run on its event loop
# (lookup/fastpath_asgi.py), the rest in Django's thread. The WSGI setup stays available:
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
