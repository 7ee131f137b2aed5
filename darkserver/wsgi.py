"""WSGI entry point for gunicorn: ``gunicorn darkserver.wsgi``.

The hot lookups are answered by ``lookup.fastpath.FastPath`` in front of Django unless
``DARKSERVER_FASTPATH=0``; everything else is Django's.
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "darkserver.settings")
application = get_wsgi_application()

if settings.DARKSERVER_FASTPATH:
    from darkserver.lookup.fastpath import FastPath

    application = FastPath(application)
