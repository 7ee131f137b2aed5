"""``darkserver-import``: put packages' build-ids into the database.

    darkserver-import [options] PATH...          rpm/deb files and directories
    darkserver-import koji|enqueue|worker|backfill ...   (Koji and queue commands)
    darkserver-import repo URL|PATH [--suite SUITE]      (a dnf/yum or Debian repository)
    darkserver-import history                            (the import runs, newest first)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from darkcore.extras import require
from darkcore.settings import DEB_DISTRO, ConfigError
from darkcore.urltemplates import DEFAULT_URL_TEMPLATES, url_templates
from darkimport.run.importrun import default_jobs, progress_stream, report, run_import
from darkimport.run.options import ScanOptions

# Subcommands live in their own modules; each offers ``register(subparsers)``.
_SUBCOMMAND_MODULES = {
    "koji": "darkimport.koji.cli",
    "enqueue": "darkimport.queue.cli",
    "worker": "darkimport.queue.cli",
    "backfill": "darkimport.queue.cli",
    "repo": "darkimport.repo.cli",
    "history": "darkimport.run.history",
}


def files_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darkserver-import",
        description="Import the ELF build-ids of rpm and deb packages into Darkserver's database.",
        epilog="Other commands: darkserver-import {koji,enqueue,worker,backfill,repo,history} "
        "--help",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="package files or directories")
    parser.add_argument(
        "-j", "--jobs", type=int, default=default_jobs(), help="parallel scans (default: CPUs)"
    )
    parser.add_argument(
        "--deb-distro",
        default=DEB_DISTRO.get() or None,
        help="distro tag for debs (default: from the version, e.g. deb12, else 'debian')",
    )
    parser.add_argument(
        "--url-template",
        action="append",
        default=[],
        metavar="KIND=TEMPLATE",
        help="download URL template for rpm or deb, e.g. rpm=https://host/{name}/{filename}",
    )
    parser.add_argument(
        "--rescan", action="store_true",
        help="read every file, even those whose size and SHA-256 are already imported",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress, no warnings")
    return parser


def import_files(argv: list[str]) -> int:
    args = files_parser().parse_args(argv)
    templates = url_templates()
    for item in args.url_template:
        kind, sep, template = item.partition("=")
        if not sep or kind not in DEFAULT_URL_TEMPLATES:
            print(f"darkserver-import: --url-template wants rpm=... or deb=..., not {item!r}",
                  file=sys.stderr)
            return 2
        templates[kind] = template
    try:
        options = ScanOptions(deb_distro=args.deb_distro, url_templates=templates)
    except ConfigError as exc:
        print(f"darkserver-import: {exc}", file=sys.stderr)
        return 2
    progress = None if args.quiet or args.json else progress_stream()
    summary = run_import(args.paths, options, max(1, args.jobs), progress=progress,
                         rescan=args.rescan)
    return report(summary, args.json, args.quiet)


def main(argv: list[str] | None = None) -> None:
    require("import", "darkserver-import")
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in _SUBCOMMAND_MODULES:
        sys.exit(run_subcommand(args))
    sys.exit(import_files(args))


def run_subcommand(args: list[str]) -> int:
    import importlib

    module = importlib.import_module(_SUBCOMMAND_MODULES[args[0]])
    parser = argparse.ArgumentParser(prog="darkserver-import")
    subparsers = parser.add_subparsers(dest="command", required=True)
    module.register(subparsers)
    ns = parser.parse_args(args)
    handler: Callable[[argparse.Namespace], int] = ns.handler
    return handler(ns)


if __name__ == "__main__":
    main()
