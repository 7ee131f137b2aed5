"""Import a whole repository from its index: only what the database does not know yet.

    run_repo(base, suite=None, ...) -> RepoSummary

1. Read the index (``rpmmd`` for dnf/yum, ``debian`` with a suite), each level checked against
   the checksum its parent gives.
2. Known packages are found by the index's own checksums (Package.sha256), without opening a
   package; an rpm whose NVRA is stored with its SIGMD5 (from Koji, or another copy) is
   known by name: the mirror's copy differs from it only by its signature.
3. Debian -dbgsym packages whose stanza lists ``Build-Ids:`` get their rows from the index.
4. The rest is downloaded, verified and scanned in worker processes (``fetch``), biggest
   first, and written here, one transaction per package.

Resuming is re-running: every package committed by a killed run is known to the next one by
its checksum, so it continues where the first stopped. Packages that left the repository keep
their rows (a crash dump may still name them). Each run is recorded in the audit table.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from darkimport.repo import debian, rpmmd
from darkimport.repo.entries import IndexEntry
from darkimport.repo.source import RepoSource
from darkimport.run.records import PackageScan

if TYPE_CHECKING:
    from collections.abc import Callable

    from darkimport.run.importrun import Outcome
    from darkimport.run.options import ScanOptions
    from darkimport.run.store import StoreResult  # needs Django set up before it is imported

    StoreFn = Callable[[PackageScan], StoreResult]



@dataclass(slots=True)
class RepoSummary:
    source: str
    kind: str
    listed: int = 0  # packages in the index (binary, each file once)
    new: int = 0  # imported by this run (downloaded or from the index)
    from_index: int = 0  # of which from the index alone (dbgsym Build-Ids)
    known: int = 0  # already in the database: not downloaded
    skipped: int = 0
    failed: int = 0
    bytes: int = 0  # downloaded
    rows: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Downloaded MB/s over the whole run."""
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"{self.source}: {self.listed} packages listed; new: {self.new} "
                f"({self.from_index} from the index alone), known: {self.known}, "
                f"skipped: {self.skipped}, failed: {self.failed}; rows: {self.rows}; "
                f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s ({self.rate:.1f} MB/s)")

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source, "kind": self.kind, "listed": self.listed, "new": self.new,
            "from_index": self.from_index, "known": self.known, "skipped": self.skipped,
            "failed": self.failed, "bytes": self.bytes, "rows": self.rows,
            "seconds": round(self.seconds, 3), "mb_per_s": round(self.rate, 2),
            "failures": [{"file": f, "reason": r} for f, r in self.failures],
            "warnings": self.warnings,
        }


def read_index(source: RepoSource, suite: str | None, components: Sequence[str] = (),
               architectures: Sequence[str] = ()) -> list[IndexEntry]:
    """Every package file the index lists, once (Debian lists arch:all in every arch)."""
    if suite:
        found: Iterable[IndexEntry] = debian.entries(source, suite, components, architectures)
    else:
        found = rpmmd.entries(source)
    unique: dict[str, IndexEntry] = {}
    for entry in found:
        unique.setdefault(entry.location, entry)
    return list(unique.values())


def split_known(entries: list[IndexEntry]) -> tuple[list[IndexEntry], list[IndexEntry]]:
    """(entries to import, entries already in the database), by the index's checksums."""
    from darkimport.run.store import package_identities

    by_sha = [e.checksum for e in entries if e.checksum_type == "sha256"]
    known_sha = {sha for sha, *_rest in package_identities("sha256", by_sha)}
    rest = [e for e in entries if not (e.checksum_type == "sha256" and e.checksum in known_sha)]
    stored = {nvra: (size, sha256, sigmd5) for nvra, size, sha256, sigmd5
              in package_identities("nvra", [e.nvra for e in rest])}

    def known_by_name(e: IndexEntry) -> bool:
        if e.nvra not in stored:
            return False
        size, sha256, sigmd5 = stored[e.nvra]
        if e.kind == "rpm" and sigmd5:
            # The build's payload is known (Koji's payloadhash): a mirror's copy differs from
            # Koji's or a local tree's only by its signature, and Koji's NVRAs are unique.
            return True
        # An index checksum we cannot compare: the same name and size.
        return e.checksum_type != "sha256" and size == e.size

    todo: list[IndexEntry] = []
    known: list[IndexEntry] = []
    for e in entries:
        is_known = (e.checksum_type == "sha256" and e.checksum in known_sha) or known_by_name(e)
        (known if is_known else todo).append(e)
    return todo, known


def run_repo(
    base: str,
    suite: str | None = None,
    components: Sequence[str] = (),
    architectures: Sequence[str] = (),
    options: ScanOptions | None = None,
    jobs: int = 1,
    progress: TextIO | None = None,
    rescan: bool = False,
    download_dbgsym: bool = False,
    retries: int = 3,
) -> RepoSummary:
    """Import a repository; raises RepoError when its index cannot be read."""
    from darkimport import djangosetup

    djangosetup.setup()
    from darkimport.run import audit
    from darkimport.run.store import ensure_schema

    started = time.monotonic()
    source = RepoSource(base, retries=retries)
    label = source.base + (f" {suite}" if suite else "")
    if components:
        label += " " + ",".join(components)
    if architectures:
        label += " " + ",".join(architectures)
    summary = RepoSummary(label, "debian" if suite else "rpm-md")
    ensure_schema()
    run_id = audit.start(label, summary.kind)
    aborted = True
    try:
        entries = read_index(source, suite, components, architectures)
        summary.listed = len(entries)
        todo, known = (entries, []) if rescan else split_known(entries)
        summary.known = len(known)
        if todo:
            _import_new(summary, source, todo, options, jobs, progress, download_dbgsym,
                        retries)
        aborted = False
    finally:
        summary.seconds = time.monotonic() - started
        audit.finish(run_id, audit.RunCounts(
            new=summary.new, known=summary.known, failed=summary.failed,
            bytes_read=summary.bytes, seconds=summary.seconds), aborted=aborted)
    return summary


def _import_new(summary: RepoSummary, source: RepoSource, todo: list[IndexEntry],
                options: ScanOptions | None, jobs: int, progress: TextIO | None,
                download_dbgsym: bool, retries: int) -> None:
    """Rows for the packages the database does not know: from the index, or downloaded and
    scanned in worker processes. The readers, requests and the worker pool are imported only
    here: a re-run that finds nothing new does not pay for them (docs/BENCHMARKS.md)."""
    from darkimport.repo.fetch import FetchJob, fetch_and_scan, index_only, index_scan
    from darkimport.run.importrun import iter_parallel
    from darkimport.run.options import ScanOptions
    from darkimport.run.store import close_connections, store_scan

    options = options or ScanOptions()
    fetch: list[IndexEntry] = []
    for entry in todo:
        if index_only(entry) and not download_dbgsym:
            scan = index_scan(entry, source, options)
            _store(summary, entry.location, scan, store_scan, from_index=True)
        else:
            fetch.append(entry)
    # Biggest first: the largest package is the long pole of a parallel run.
    fetch.sort(key=lambda e: (-e.size, e.location))
    jobs_list = [FetchJob(source.base, e, options, retries) for e in fetch]
    # Forked workers must not share this process's database socket.
    close_connections()
    total, started_fetch = len(jobs_list), time.monotonic()
    for done, outcome in enumerate(iter_parallel(fetch_and_scan, jobs_list, jobs), 1):
        status = _record(summary, outcome, store_scan)
        if progress is not None:
            elapsed = max(time.monotonic() - started_fetch, 1e-6)
            progress.write(
                f"\r\033[K[{done}/{total}] {summary.bytes / 1e6:.1f} MB "
                f"{summary.bytes / 1e6 / elapsed:.1f} MB/s new {summary.new} "
                f"failed {summary.failed} {status} {os.path.basename(outcome.path)}")
            progress.flush()
    if progress is not None and total:
        progress.write("\n")


def _record(summary: RepoSummary, outcome: Outcome, store: StoreFn) -> str:
    if outcome.skipped:
        summary.skipped += 1
        summary.warnings.append(f"{outcome.path}: skipped: {outcome.skipped}")
        return "skipped"
    if outcome.error or outcome.scan is None:
        summary.failed += 1
        summary.failures.append((outcome.path, outcome.error))
        return "FAILED"
    summary.bytes += outcome.scan.meta.size
    return _store(summary, outcome.path, outcome.scan, store)


def _store(summary: RepoSummary, name: str, scan: PackageScan, store: StoreFn,
           from_index: bool = False) -> str:
    summary.warnings.extend(f"{name}: {w}" for w in scan.warnings)
    try:
        result = store(scan)
    except Exception as exc:  # a database error fails this package only; the run goes on
        summary.failed += 1
        summary.failures.append((name, f"database: {exc}"))
        return "FAILED"
    if result.inserted:
        summary.new += 1
        summary.from_index += from_index
        summary.rows += result.rows
        return "imported"
    summary.known += 1
    return "present"


def progress_stream() -> TextIO | None:
    return sys.stderr if sys.stderr.isatty() else None
