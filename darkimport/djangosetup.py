"""Start Django for the importer: the ORM and the read/write database of the [darkserver] role."""

from __future__ import annotations

import os

from darkcore import settings as settings_registry

_done = False


def setup() -> None:
    global _done
    if _done:
        return
    from django.conf import settings

    # In a process of its own the importer picks its role before settings load. When a host
    # (the test suite, a web process) has loaded settings already, its role stands: changing
    # the environment now would only mislead later configuration reads.
    if not settings.configured:
        os.environ.setdefault("DARKSERVER_ROLE", "importer")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "darkserver.settings")
        settings_registry.reload()  # values read before the role was set are the web's
    import django

    django.setup()
    _done = True
