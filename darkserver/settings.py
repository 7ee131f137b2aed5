"""Django settings. Every value comes from the environment (or conf/ INI files) with a default."""

from __future__ import annotations

import os

from darkcore import config

BASE_DIR = os.path.dirname(os.path.abspath(__file__))

# No sessions, users or admin: the service is anonymous and read-only, so a random key is fine
# unless an operator pins one.
SECRET_KEY = os.environ.get("DARKSERVER_SECRET_KEY", "darkserver-has-no-secrets-to-sign")
DEBUG = os.environ.get("DARKSERVER_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("DARKSERVER_ALLOWED_HOSTS", "*").split(",")

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
DARKSERVER_REPLICAS = [alias for alias in DATABASES if alias != "default"]
DATABASE_ROUTERS = ["darkserver.lookup.replicas.ReplicaRouter"] if DARKSERVER_REPLICAS else []
# A replica further behind the primary than this many seconds is skipped.
DARKSERVER_REPLICA_MAX_LAG = float(config.setting("replica_max_lag", "30"))
# How often a replica's reachability and lag are checked (a skipped one is retried this often).
DARKSERVER_REPLICA_CHECK_SECONDS = float(config.setting("replica_check_seconds", "2"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

# Largest accepted request body (a batch of 10,000 build-ids of 64 bytes is ~1.4 MB of JSON).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DARKSERVER_MAX_BODY", str(2 * 1024 * 1024)))
# Most build-ids one batch request may ask for.
DARKSERVER_MAX_BATCH = int(os.environ.get("DARKSERVER_MAX_BATCH", "10000"))
# Serve GET /buildids/<ids>, GET /api/v1/buildid/<id> and POST /api/v1/buildids in a thin WSGI
# layer in front of Django (lookup/fastpath.py); 0 sends every request through Django.
DARKSERVER_FASTPATH = os.environ.get("DARKSERVER_FASTPATH", "1") != "0"
# Most rows one prefix or path lookup returns.
DARKSERVER_MAX_MATCHES = int(os.environ.get("DARKSERVER_MAX_MATCHES", "1000"))

APPEND_SLASH = False
# No static files are served (the page inlines its CSS and JS); set for Django's test servers.
STATIC_URL = "/static/"
# Candidate download URL templates (DARKSERVER_URL_TEMPLATES or [settings] url_templates, a
# JSON list, format in docs/API.md) are read by darkserver.lookup.serialize when first needed.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {
        "handlers": ["console"],
        "level": os.environ.get("DARKSERVER_LOG_LEVEL", "WARNING").upper(),
    },
}
