"""ASGI entry point, the default server setup: ``gunicorn -c conf/gunicorn.conf.py
darkserver.asgi:application`` (gunicorn with uvicorn's worker, darkserver/httpedge.py).

Request bodies are bounded first (``lookup.bodylimit.BodyLimit``); the hot lookups are answered
by ``lookup.fastpath_asgi.AsgiFastPath`` in front of Django unless ``DARKSERVER_FASTPATH=0``;
everything else is Django's ASGI handler.
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "darkserver.settings")
django_application = get_asgi_application()
# Django's connections are per request context under ASGI: a kept one is never reused, only
# left for the garbage collector (Django's documentation: disable persistent connections under
# ASGI). The hot lookups keep a connection of their own (lookup/loopdb.py).
for database in settings.DATABASES.values():
    database["CONN_MAX_AGE"] = 0

# After Django is set up: the fast path imports the models.
from darkserver.lookup.bodylimit import BodyLimit  # noqa: E402
from darkserver.lookup.fastpath_asgi import AsgiFastPath  # noqa: E402

application = BodyLimit(AsgiFastPath(django_application, fast=settings.DARKSERVER_FASTPATH))
