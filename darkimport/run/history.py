"""``darkserver-import history [--limit N] [--json]``: the import runs, newest first."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
        help="list the import runs",
        description="Which sources and repositories were imported when: packages new, known "
        "(skipped: already imported), failed, bytes read, seconds. A run still 'running' "
        "that is not running any more was killed; importing the same source again continues it.",
    )
    parser.add_argument("--limit", type=int, default=20, help="runs to show (default 20)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from darkimport import djangosetup

    djangosetup.setup()
    from darkimport.run import audit
    from darkimport.run.store import ensure_schema

    ensure_schema()
    runs = audit.history(max(1, args.limit))
    if args.json:
        print(json.dumps([audit.as_dict(r) for r in runs], indent=2))
    elif runs:
        print(audit.table(runs))
    else:
        print("no import runs yet")
    return 0
