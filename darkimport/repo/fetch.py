"""One index entry in, one Outcome out: download, verify against the index, scan (no database).

The package is streamed from the socket into the readers (``scan_stream``), hashed on the
way; nothing is written to disk but ELF members past ``ELF_IN_MEMORY`` (an anonymous
temporary file, as for local files). The scan is returned only when the size and checksum
match the index, so a package that is not what the index promises leaves no rows. A network
failure is retried from the start; a broken package is not (it would fail the same way).

A Debian -dbgsym package lists its build-ids in the index (``Build-Ids:``); ``index_scan``
makes its rows from that alone: ``/usr/lib/debug/.build-id/xx/rest.debug`` per id.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import BinaryIO, cast

import requests
import urllib3

from darkcore import buildid
from darkcore.compression import DigestReader
from darkcore.deb import control_from_fields
from darkcore.errors import PackageError, UnsupportedPackage
from darkimport.repo.debian import DEB_ARCH_ELF
from darkimport.repo.entries import IndexEntry
from darkimport.repo.source import RepoSource
from darkimport.run.importrun import Outcome
from darkimport.run.records import ElfRecord, PackageScan
from darkimport.run.scan import ScanOptions, deb_meta, scan_stream

_NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError,
                   TimeoutError)
ET_NONE = 0  # an index does not say whether the stripped file was EXEC or DYN


@dataclass(frozen=True, slots=True)
class FetchJob:
    base: str
    entry: IndexEntry
    options: ScanOptions
    retries: int = 3
    timeout: float = 60.0


def fetch_and_scan(job: FetchJob) -> Outcome:
    entry = job.entry
    source = RepoSource(job.base, timeout=job.timeout, retries=job.retries)
    last = ""
    for attempt in range(max(1, job.retries)):
        if attempt:
            time.sleep(min(2 ** (attempt - 1), 10))
        try:
            return _once(source, entry, job.options)
        except UnsupportedPackage as exc:
            return Outcome(entry.location, skipped=str(exc))
        except PackageError as exc:
            return Outcome(entry.location, error=str(exc) or type(exc).__name__)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            last = f"download failed: HTTP {status}"
            if status < 500:
                break  # 404 and friends will not change by asking again
        except _NETWORK_ERRORS as exc:
            last = f"download failed: {type(exc).__name__}: {exc}"
        except OSError as exc:
            return Outcome(entry.location, error=f"cannot read: {exc.strerror or exc}")
    return Outcome(entry.location, error=last)


def _once(source: RepoSource, entry: IndexEntry, options: ScanOptions) -> Outcome:
    with source.open_stream(entry.location) as raw:
        stream: BinaryIO = raw
        other = None
        if entry.checksum_type != "sha256":  # scan_stream takes SHA-256 itself
            other = hashlib.new(entry.checksum_type)
            stream = cast(BinaryIO, DigestReader(raw, other))
        scan = scan_stream(stream, entry.filename, options)
    actual = other.hexdigest() if other is not None else scan.meta.sha256
    if actual != entry.checksum or (entry.size >= 0 and scan.meta.size != entry.size):
        return Outcome(entry.location, error=(
            f"does not match the index: {entry.checksum_type} {actual} ({scan.meta.size} "
            f"bytes), the index says {entry.checksum} ({entry.size} bytes); not imported"))
    if scan.meta.nvra != entry.nvra:
        scan.warnings.append(f"the index calls it {entry.nvra}, the package {scan.meta.nvra}")
    scan.meta.url = source.url(entry.location) if not source.local else scan.meta.url
    return Outcome(entry.location, scan=scan)


def index_only(entry: IndexEntry) -> bool:
    """A Debian debug package whose build-ids the index lists: no download needed."""
    return entry.kind == "deb" and bool(entry.build_ids) and (
        entry.fields.get("Package", "").endswith("-dbgsym")
        or entry.fields.get("Section", "") == "debug")


def index_scan(entry: IndexEntry, source: RepoSource, options: ScanOptions) -> PackageScan:
    """The rows of a -dbgsym package from its index stanza: one debug file per listed id.
    (A dwz multifile under /usr/lib/debug/.dwz/ is not listed, so it has no row this way.)"""
    control = control_from_fields(entry.fields)
    meta = deb_meta(control, entry.filename, options)
    meta.size, meta.sha256 = entry.size, entry.checksum
    if not source.local:
        meta.url = source.url(entry.location)
    # An unknown architecture: machine 0, class 0 and byte order None say "not known".
    machine, elf_class, big_endian = DEB_ARCH_ELF.get(entry.arch, (0, 0, None))
    elves, warnings = [], []
    for listed in entry.build_ids:
        if not buildid.is_build_id(listed):
            warnings.append(f"index lists a malformed build-id {listed!r}: skipped")
            continue
        build_id = listed.lower()
        path = buildid.DEBUG_DIR + buildid.link_name(build_id) + ".debug"
        elves.append(ElfRecord(bytes.fromhex(build_id), path, ET_NONE, machine, elf_class,
                               big_endian, True))
    return PackageScan(meta, elves, elf_files=len(elves), without_build_id=0, warnings=warnings)
