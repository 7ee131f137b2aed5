"""``darkserver-import repo URL|PATH [--suite SUITE] [--component C] [--arch A]``

A dnf/yum repository (``URL/repodata/repomd.xml``) or, with ``--suite``, a Debian archive
(``URL/dists/SUITE/Release``). Registered into the main CLI by ``register``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from darkcore.settings import DEB_DISTRO, REPO_RETRIES


def register(subparsers: Any) -> None:
    from darkimport.run.importrun import default_jobs

    parser = subparsers.add_parser(
        "repo",
        help="import a dnf/yum repository or a Debian archive from its index",
        description="Import a whole repository from its index: only packages the database "
        "does not know (by the index's checksums) are downloaded, verified against the "
        "index and scanned. Killed runs continue where they stopped when run again. "
        "Debian -dbgsym packages that list Build-Ids in the index are not downloaded.",
    )
    parser.add_argument("source", metavar="URL|PATH",
                        help="repository root: http(s) URL or local directory")
    parser.add_argument("--suite", help="Debian archive: the suite under dists/ (e.g. bookworm, "
                        "bookworm-debug); without it the repository is dnf/yum")
    parser.add_argument("--component", action="append", default=[], metavar="C",
                        help="Debian: only this component (repeatable; default: all listed)")
    parser.add_argument("--arch", action="append", default=[], metavar="A",
                        help="Debian: only this architecture (repeatable; default: all listed)")
    parser.add_argument("-j", "--jobs", type=int, default=default_jobs(),
                        help="parallel downloads and scans (default: CPUs)")
    parser.add_argument("--rescan", action="store_true",
                        help="download and read every package, known or not")
    parser.add_argument("--download-dbgsym", action="store_true",
                        help="download -dbgsym packages too instead of using the index's "
                        "Build-Ids (adds their dwz files)")
    parser.add_argument("--retries", type=int,
                        default=REPO_RETRIES.get(),
                        help="tries per download (default 3; DARKSERVER_REPO_RETRIES)")
    parser.add_argument("--deb-distro", default=DEB_DISTRO.get() or None,
                        help="distro tag for debs (default: from the version, else 'debian')")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress, no warnings")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from darkcore.urltemplates import url_templates
    from darkimport.repo.entries import RepoError
    from darkimport.repo.run import progress_stream, run_repo
    from darkimport.run.importrun import report
    from darkimport.run.options import ScanOptions

    if (args.component or args.arch) and not args.suite:
        print("darkserver-import repo: --component and --arch need --suite", file=sys.stderr)
        return 2
    options = ScanOptions(deb_distro=args.deb_distro, url_templates=url_templates())
    progress = None if args.quiet or args.json else progress_stream()
    try:
        summary = run_repo(args.source, args.suite, args.component, args.arch, options,
                           max(1, args.jobs), progress, rescan=args.rescan,
                           download_dbgsym=args.download_dbgsym, retries=args.retries)
    except RepoError as exc:
        print(f"darkserver-import repo: {exc}", file=sys.stderr)
        return 2
    return report(summary, args.json, args.quiet)
