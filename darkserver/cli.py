"""The ``darkserver`` command: Django's manage.py for this project (migrate, runserver, ...)."""

from __future__ import annotations

import os
import sys

from darkcore.extras import require


def main(argv: list[str] | None = None) -> None:
    require("server", "darkserver")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "darkserver.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["darkserver", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
