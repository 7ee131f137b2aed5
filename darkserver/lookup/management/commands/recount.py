"""``darkserver recount``: recompute /api/v1/stats's counters from the rows (as the importer's
read/write user). Only needed after rows were changed outside the importer."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from darkserver.lookup import counters


class Command(BaseCommand):
    help = "Recompute the statistics counters from the rows (a full scan of the ELF table)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(counters.recount(), indent=2, sort_keys=True))
