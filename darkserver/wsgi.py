"""WSGI entry point, for servers that speak only WSGI: Django alone, without the fast path of
the default ASGI setup (darkserver/asgi.py), e.g.
``DARKSERVER_WORKER_CLASS=gthread gunicorn -c conf/gunicorn.conf.py darkserver.wsgi``.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "darkserver.settings")
application = get_wsgi_application()
