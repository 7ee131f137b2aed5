"""Django settings. Every value comes from the environment (or conf/ INI files) with a default."""

from __future__ import annotations

import os

from darkcore import config

BASE_DIR = os.path.dirname(os.path.abspath(__file__))

# No sessions, users, admin or CSRF: the service is anonymous and read-only and signs nothing,
# so this fixed, public key protects nothing and needs none; an operator may still set one.
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

# Largest accepted request body (a batch of 10,000 build-ids of 64 bytes is ~1.4 MB of JSON).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DARKSERVER_MAX_BODY", str(2 * 1024 * 1024)))
# Most build-ids one batch request may ask for.
DARKSERVER_MAX_BATCH = int(os.environ.get("DARKSERVER_MAX_BATCH", "10000"))
# Serve GET /buildids/<ids>, GET /api/v1/buildid/<id> and POST /api/v1/buildids in a thin ASGI
# layer in front of Django (lookup/fastpath_asgi.py); 0 sends every request through Django.
DARKSERVER_FASTPATH = os.environ.get("DARKSERVER_FASTPATH", "1") != "0"
# The service's public URL (https://darkserver.example), for the page's links and examples;
# "": relative links. Never taken from the request's Host header.
DARKSERVER_BASE_URL = config.setting("base_url", "")
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
    # One bounded line per client error, never a traceback (darkserver/logbounds.py).
    "filters": {"bounded": {"()": "darkserver.logbounds.BoundedClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["bounded"]}},
    "root": {
        "handlers": ["console"],
        "level": os.environ.get("DARKSERVER_LOG_LEVEL", "WARNING").upper(),
    },
}
