"""Import a set of package files: scan in parallel worker processes, write in this one.

Scanning (decompression and ELF parsing) is CPU-bound and needs no database, so it runs in a
process pool; the parent alone writes, one transaction per package, which keeps SQLite free of
writer contention and makes every outcome visible in one place for the summary.
"""

from __future__ import annotations

import collections
import functools
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO, TypeVar

from darkcore.errors import PackageError, UnsupportedPackage
from darkimport.run.options import ScanOptions
from darkimport.run.records import PackageScan

T = TypeVar("T")


@dataclass(slots=True)
class Outcome:
    path: str
    scan: PackageScan | None = None
    error: str = ""
    skipped: str = ""  # why a package was deliberately not imported (source rpm, ...)


class Reported(Protocol):
    """What a run's summary offers the command that prints it (Summary, RepoSummary)."""

    failed: int
    warnings: list[str]
    failures: list[tuple[str, str]]

    def line(self) -> str: ...

    def as_dict(self) -> dict[str, object]: ...


def report(summary: Reported, as_json: bool, quiet: bool) -> int:
    """Print a run's summary the way every import command does; the exit status: 1 when a
    package failed, else 0."""
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        if not quiet:
            for warning in summary.warnings:
                print(f"warning: {warning}", file=sys.stderr)
        for name, reason in summary.failures:
            print(f"FAILED {name}: {reason}", file=sys.stderr)
        print(summary.line())
    return 1 if summary.failed else 0


@dataclass(slots=True)
class Summary:
    packages: int = 0  # imported now
    known: int = 0  # skipped unread: the file's identity is already in the database
    already: int = 0  # read, but its package was already in the database
    replaced: int = 0  # read again: same package name, different content (rows replaced)
    bytes_read: int = 0  # package bytes decoded
    elf_files: int = 0
    build_ids: int = 0
    rows: int = 0
    without_build_id: int = 0
    skipped: int = 0
    failed: int = 0
    unverified: int = 0  # imported, but the package carries no digest covering what we read
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"packages: {self.packages} imported, {self.known} known (not read), "
            f"{self.already} already present; "
            f"ELF files: {self.elf_files} ({self.without_build_id} without build-id); "
            f"build-ids: {self.build_ids}; rows: {self.rows}; skipped: {self.skipped}; "
            f"failed: {self.failed}; unverified: {self.unverified}; seconds: {self.seconds:.2f}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "packages": self.packages,
            "known": self.known,
            "already": self.already,
            "replaced": self.replaced,
            "bytes_read": self.bytes_read,
            "elf_files": self.elf_files,
            "build_ids": self.build_ids,
            "rows": self.rows,
            "without_build_id": self.without_build_id,
            "skipped": self.skipped,
            "failed": self.failed,
            "unverified": self.unverified,
            "seconds": round(self.seconds, 3),
            "failures": [{"file": f, "reason": r} for f, r in self.failures],
            "warnings": self.warnings,
        }


def find_packages(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand directories into their package files; name what does not exist."""
    # Also loads the readers in the parent, before iter_parallel forks the workers that share
    # them; a repository re-run, which reads no package, never comes here.
    from darkimport.run.scan import PACKAGE_SUFFIXES

    found: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, _dirs, files in os.walk(path):
                found.extend(Path(root) / f for f in files if f.endswith(PACKAGE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            missing.append((str(path), "no such file or directory"))
    # Biggest first: the largest package is the long pole of a parallel run.
    found.sort(key=lambda p: (-p.stat().st_size, str(p)))
    return found, missing


def scan_one(path: str, options: ScanOptions) -> Outcome:
    from darkimport.run.scan import scan_path  # the readers: only where a package is read

    try:
        return Outcome(path, scan=scan_path(path, options))
    except UnsupportedPackage as exc:
        return Outcome(path, skipped=str(exc))
    except PackageError as exc:
        return Outcome(path, error=str(exc) or type(exc).__name__)
    except OSError as exc:
        return Outcome(path, error=f"cannot read: {exc.strerror or exc}")


def iter_scans(paths: list[Path], options: ScanOptions, jobs: int) -> Iterator[Outcome]:
    return iter_parallel(functools.partial(scan_one, options=options),
                         [str(p) for p in paths], jobs)


def iter_parallel(task: Callable[[T], Outcome], items: list[T], jobs: int) -> Iterator[Outcome]:
    """``task`` over ``items`` in worker processes, outcomes in the order they finish."""
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            yield task(item)
        return
    # fork: workers inherit the loaded modules; they never touch the parent's DB connection.
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        pending: list[Future[Outcome]] = []
        queue = collections.deque(items)
        # Keep a bounded number of scans in flight so finished scans don't pile up in memory.
        while queue or pending:
            while queue and len(pending) < jobs * 2:
                pending.append(pool.submit(task, queue.popleft()))
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                pending.remove(fut)
                yield fut.result()


def run_import(
    paths: Iterable[str | Path],
    options: ScanOptions,
    jobs: int,
    progress: TextIO | None = None,
    store: Callable[[PackageScan], tuple[bool, int]] | None = None,
    rescan: bool = False,
) -> Summary:
    """Import packages; returns the summary. ``store`` writes one scan (default: the database,
    where files already imported are skipped unread unless ``rescan``, and the run is
    recorded in the audit table)."""
    started = time.monotonic()
    summary = Summary()
    names = [str(p) for p in paths]
    files, missing = find_packages(names)
    known: list[Path] = []
    run_id: int | None = None
    if store is None:
        from darkimport import djangosetup

        djangosetup.setup()
        from darkimport.run import audit
        from darkimport.run.identity import split_known
        from darkimport.run.store import close_connections, ensure_schema, store_scan

        ensure_schema()
        run_id = audit.start(" ".join(names), "files")
        if not rescan:
            files, known = split_known(files, jobs)
        close_connections()  # forked scanners must not share this process's database socket

        def store(scan: PackageScan) -> tuple[bool, int]:
            result = store_scan(scan)
            if result.replaced:
                summary.replaced += 1
                summary.warnings.append(
                    f"{scan.meta.filename}: content changed since it was imported "
                    f"(now sha256 {scan.meta.sha256}): its rows were replaced")
            return result.inserted, result.rows

    summary.known = len(known)
    for name, reason in missing:
        summary.failed += 1
        summary.failures.append((name, reason))
    total = len(files)
    for index, outcome in enumerate(iter_scans(files, options, jobs), start=1):
        status = _record(summary, outcome, store)
        if progress is not None:
            name = os.path.basename(outcome.path)
            progress.write(f"\r\033[K[{index}/{total}] {status:8} {name}")
            progress.flush()
    if progress is not None and total:
        progress.write("\n")
    summary.seconds = time.monotonic() - started
    if run_id is not None:
        audit.finish(run_id, audit.RunCounts(
            new=summary.packages, known=summary.known + summary.already, failed=summary.failed,
            bytes_read=summary.bytes_read, seconds=summary.seconds))
    return summary


def _record(
    summary: Summary, outcome: Outcome, store: Callable[[PackageScan], tuple[bool, int]]
) -> str:
    name = outcome.path
    if outcome.skipped:
        summary.skipped += 1
        summary.warnings.append(f"{name}: skipped: {outcome.skipped}")
        return "skipped"
    if outcome.error or outcome.scan is None:
        summary.failed += 1
        summary.failures.append((name, outcome.error))
        return "FAILED"
    scan = outcome.scan
    summary.bytes_read += scan.meta.size
    summary.warnings.extend(f"{name}: {w}" for w in scan.warnings)
    try:
        inserted, rows = store(scan)
    except Exception as exc:  # a database error fails this package only; the batch goes on
        summary.failed += 1
        summary.failures.append((name, f"database: {exc}"))
        return "FAILED"
    summary.elf_files += scan.elf_files
    summary.without_build_id += scan.without_build_id
    if not scan.verified:
        summary.unverified += 1
        summary.warnings.append(f"{name}: unverified: the package carries no digest covering "
                                "its contents (rpm: header and payload digests; deb: md5sums "
                                "of its ELF files)")
    summary.build_ids += len(scan.build_ids)
    if inserted:
        summary.packages += 1
        summary.rows += rows
        return "imported"
    summary.already += 1
    return "present"


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def progress_stream() -> TextIO | None:
    return sys.stderr if sys.stderr.isatty() else None
