"""Django settings. Every value comes from the settings registry (darkcore/settings.py): the
environment, else the INI files in conf/, else a default."""

from __future__ import annotations

import os

from darkcore import config
from darkcore import settings as registry

BASE_DIR = os.path.dirname(os.path.abspath(__file__))

# No sessions, users or admin: the service is anonymous and read-only and signs nothing, so a
# fixed key is fine unless an operator pins one.
SECRET_KEY = registry.SECRET_KEY.get()
DEBUG = registry.DEBUG.get()
ALLOWED_HOSTS = registry.ALLOWED_HOSTS.get().split(",")

INSTALLED_APPS = ["darkserver.lookup"]

# The hot lookup path pays for every middleware: only the metrics middleware runs.
MIDDLEWARE = [
    "darkserver.lookup.middleware.MetricsMiddleware",
]

ROOT_URLCONF = "darkserver.urls"
WSGI_APPLICATION = "darkserver.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]

DATABASES = {"default": config.database_settings()}
# Read replicas (web only): aliases replica1, replica2, ... in the configured order; the router
# sends every read to the first healthy one, else to the primary ("default").
if config.role() == config.ROLE_WEB:
    for _number, _entry in enumerate(config.replica_settings(), 1):
        DATABASES[f"replica{_number}"] = _entry
READ_REPLICAS = [alias for alias in DATABASES if alias != "default"]
DATABASE_ROUTERS = ["darkserver.lookup.replicas.ReplicaRouter"] if READ_REPLICAS else []
# A replica further behind the primary than this many seconds is skipped.
DARKSERVER_REPLICA_MAX_LAG = registry.REPLICA_MAX_LAG.get()
# How often a replica's reachability and lag are checked (a skipped one is retried this often).
DARKSERVER_REPLICA_CHECK_SECONDS = registry.REPLICA_CHECK_SECONDS.get()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

# Largest accepted request body (a batch of 10,000 build-ids of 64 bytes is ~1.4 MB of JSON).
DATA_UPLOAD_MAX_MEMORY_SIZE = registry.MAX_BODY.get()
# Most build-ids one batch request may ask for.
DARKSERVER_MAX_BATCH = registry.MAX_BATCH.get()
# Serve GET /buildids/<ids>, GET /api/v1/buildid/<id> and POST /api/v1/buildids in a thin ASGI
# layer in front of Django (lookup/fastpath_asgi.py); 0 sends every request through Django.
DARKSERVER_FASTPATH = registry.FASTPATH.get()
# MiB of lookup answers each worker's fast path keeps (lookup/answercache.py); 0: none.
DARKSERVER_ANSWER_CACHE_MB = registry.ANSWER_CACHE_MB.get()
# The service's public URL (https://darkserver.example), for the page's links and examples;
# "": relative links. Never taken from the request's Host header.
DARKSERVER_BASE_URL = registry.BASE_URL.get()
# Most rows one prefix or path lookup returns.
DARKSERVER_MAX_MATCHES = registry.MAX_MATCHES.get()

APPEND_SLASH = False
# No static files are served (the page inlines its CSS and JS); set for Django's test servers.
STATIC_URL = "/static/"
# Candidate download URL templates (DARKSERVER_URL_TEMPLATES or [settings] url_templates, a
# JSON list, format in docs/API.md) are read by darkserver.lookup.serialize when first needed.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One bounded line per client error, never a traceback (darkserver/logbounds.py).
    "filters": {"bounded": {"()": "darkserver.logbounds.BoundedClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["bounded"]}},
    "root": {
        "handlers": ["console"],
        "level": registry.LOG_LEVEL.get().upper(),
    },
}
