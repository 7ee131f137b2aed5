"""From matches to files on disk: pick the right match, download its package once, extract.

Shared by the CLI (``--download``, ``--debug-dir``) and the local debuginfod endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import requests

from darkclient.debugdir import Outcome, Target, extract
from darkclient.download import download_spooled, download_to_dir
from darkclient.errors import DownloadError
from darkclient.lookup import Match
from darkclient.urls import is_debug_package
from darkcore.errors import PackageError


def pick(matches: list[Match], debug: bool) -> Match | None:
    """The match to fetch for a build-id: its separate debug file when ``debug`` (preferring
    one inside a debuginfo/dbgsym package), else the file itself in a regular package."""
    wanted = [m for m in matches if bool(m.get("debug")) == debug]
    if not wanted:
        return None
    if debug:
        wanted.sort(key=lambda m: not is_debug_package(m.get("package") or {}))
    return wanted[0]


@dataclass(slots=True)
class Job:
    build_id: str
    match: Match
    url: str
    dest: Path  # where the extracted member goes


@dataclass(slots=True)
class PackageFetch:
    url: str
    package: dict[str, Any]
    saved: Path | None = None  # when kept (--download)
    error: str = ""


def run_jobs(session: requests.Session, jobs: list[Job], timeout: float,
             keep_dir: Path | None = None,
             on_package: Callable[[PackageFetch], None] | None = None) -> list[Outcome]:
    """Download each distinct package once (kept in ``keep_dir`` if given, else in memory),
    then extract every job's member from it."""
    by_url: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        by_url.setdefault(job.url, []).append(i)
    outcomes: dict[int, Outcome] = {}
    for url, indexes in by_url.items():
        group = [jobs[i] for i in indexes]
        package = group[0].match.get("package") or {}
        fetch = PackageFetch(url, package)
        targets = [Target(j.build_id, str(j.match.get("path") or ""), j.dest) for j in group]
        stream: IO[bytes] | None = None
        try:
            if keep_dir is not None:
                fetch.saved = download_to_dir(session, url, package, keep_dir, timeout)
                stream = open(fetch.saved, "rb")  # noqa: SIM115 - closed below
            else:
                stream = download_spooled(session, url, package, timeout)
            results = extract(cast(BinaryIO, stream), targets)
        except (DownloadError, PackageError, OSError) as exc:
            fetch.error = str(exc)
            results = [Outcome(t, False, str(exc)) for t in targets]
        finally:
            if stream is not None:
                stream.close()
        if on_package is not None:
            on_package(fetch)
        outcomes.update(zip(indexes, results, strict=True))
    return [outcomes[i] for i in range(len(jobs))]


def download_only(session: requests.Session, url: str, package: dict[str, Any],
                  directory: Path, timeout: float) -> PackageFetch:
    fetch = PackageFetch(url, package)
    try:
        fetch.saved = download_to_dir(session, url, package, directory, timeout)
    except (DownloadError, OSError) as exc:
        fetch.error = str(exc)
    return fetch
