"""Start Django for the importer: the ORM and the read/write database of the [darkserver] role."""

from __future__ import annotations

import os

_done = False


def setup() -> None:
    global _done
    if _done:
        return
    os.environ.setdefault("DARKSERVER_ROLE", "importer")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "darkserver.settings")
    import django

    django.setup()
    _done = True
