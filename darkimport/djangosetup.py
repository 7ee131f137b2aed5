"""Start Django for the importer: the ORM and the read/write database of the [darkserver] role."""

from __future__ import annotations

import os

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
    import django

    django.setup()
    _done = True
