"""Import one Koji build: every binary rpm, each in its own transaction.

Three ways to read an rpm (``Mode``):

* ``payload`` — download, verify against Koji's payloadhash, scan the payload (the file
  importer's scanner), store;
* ``header`` — header-first: ask the hub for the file list (getRPMHeaders) and take the rows
  from it (see ``headerfirst``) without downloading; an rpm whose header cannot account for its
  ELF files is downloaded and scanned as in ``payload``;
* ``verify`` — both: the payload scan is stored, and any difference from the header-first rows
  is reported as a warning.

An rpm already in the database is not downloaded again, which is what makes a redelivered queue
message cheap. A failed rpm (download, verification, corrupt payload) leaves no rows and does
not stop the others; the build's outcome lists it with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from darkcore.errors import PackageError, UnsupportedPackage
from darkimport.koji import headerfirst
from darkimport.koji.source import (
    BuildInfo,
    BuildNotFound,
    BuildSkipped,
    KojiError,
    KojiSource,
    RpmInfo,
    rpm_filename,
    rpm_nvra,
)
from darkimport.run.records import PackageMeta, PackageScan, Provenance
from darkimport.run.scan import ScanOptions, rpm_distro, scan_stream

log = logging.getLogger(__name__)

Mode = Literal["payload", "header", "verify"]
MODES: tuple[Mode, ...] = ("payload", "header", "verify")

# (scan, provenance) -> (inserted, rows); the default writes to the database.
StoreFn = Callable[[PackageScan, Provenance], tuple[bool, int]]
ExistsFn = Callable[[str], bool]

@dataclass(slots=True)
class RpmOutcome:
    nvra: str
    status: str  # imported | present | failed | skipped
    method: str = ""  # payload | header: how the rows were read
    rows: int = 0
    url: str = ""
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BuildOutcome:
    instance: str
    ref: str
    nvr: str = ""
    build_id: int | None = None
    skipped: str = ""  # why the whole build was not imported (not COMPLETE, draft)
    error: str = ""  # the build could not be looked at (no such build, hub unreachable)
    not_found: bool = False  # the hub does not know the build: retrying will not help
    rpms: list[RpmOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[RpmOutcome]:
        return [r for r in self.rpms if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.error and not self.failed

    def reason(self) -> str:
        if self.error:
            return self.error
        return "; ".join(f"{r.nvra}: {r.reason}" for r in self.failed)


def default_store() -> tuple[StoreFn, ExistsFn]:
    from darkimport import djangosetup

    djangosetup.setup()
    from darkimport.run.store import package_exists, store_scan

    def store(scan: PackageScan, provenance: Provenance) -> tuple[bool, int]:
        result = store_scan(scan, provenance)
        return result.inserted, result.rows

    return store, package_exists


def import_build(
    source: KojiSource,
    ref: int | str,
    options: ScanOptions | None = None,
    mode: Mode = "payload",
    store: StoreFn | None = None,
    exists: ExistsFn | None = None,
) -> BuildOutcome:
    if store is None or exists is None:
        store, exists = default_store()
    options = options or ScanOptions()
    outcome = BuildOutcome(source.instance.name, str(ref))
    try:
        build = source.get_build(ref)
        outcome.nvr, outcome.build_id = build["nvr"], build["id"]
        rpms = source.list_rpms(build)
        sigkeys = source.signed_keys(rpms)
    except BuildSkipped as exc:
        outcome.skipped = str(exc)
        return outcome
    except KojiError as exc:
        outcome.error = str(exc)
        outcome.not_found = isinstance(exc, BuildNotFound)
        return outcome
    for rpm in rpms:
        outcome.rpms.append(
            _import_rpm(source, build, rpm, sigkeys.get(rpm["id"]), options, mode, store, exists)
        )
    return outcome


def _import_rpm(
    source: KojiSource,
    build: BuildInfo,
    rpm: RpmInfo,
    sigkey: str | None,
    options: ScanOptions,
    mode: Mode,
    store: StoreFn,
    exists: ExistsFn,
) -> RpmOutcome:
    nvra = rpm_nvra(rpm)
    result = RpmOutcome(nvra, "failed")
    if exists(nvra):
        result.status = "present"
        return result
    provenance = Provenance(source.instance.name, build["id"], rpm["id"])
    try:
        scan: PackageScan | None = None
        header_scan: PackageScan | None = None
        if mode in ("header", "verify"):
            header_scan = header_first_scan(source, build, rpm, sigkey)
            if header_scan is not None:
                scan, result.method = header_scan, "header"
        if scan is None or mode == "verify":
            stream, url = source.fetch(build, rpm, sigkey)
            with stream:
                scan = scan_stream(stream, rpm_filename(rpm), options)
            scan.meta.url, result.method = url, "payload"
            if header_scan is not None:
                result.warnings.extend(compare(header_scan, scan))
        provenance.url = scan.meta.url
        result.url = scan.meta.url
        result.warnings.extend(scan.warnings)
        inserted, rows = store(scan, provenance)
    except UnsupportedPackage as exc:
        result.status, result.reason = "skipped", str(exc)
        return result
    except (PackageError, KojiError) as exc:
        result.reason = str(exc) or type(exc).__name__
        return result
    except OSError as exc:
        result.reason = f"cannot read: {exc}"
        return result
    result.status = "imported" if inserted else "present"
    result.rows = rows
    return result


def header_first_scan(source: KojiSource, build: BuildInfo, rpm: RpmInfo,
                      sigkey: str | None) -> PackageScan | None:
    """The rpm's rows from Koji's copy of its header; None when the header cannot say."""
    header = source.rpm_headers(rpm, headerfirst.HEADER_FIELDS)
    found = headerfirst.rows_from_header(header)
    if found is None:
        return None
    meta = meta_from_koji(build, rpm, source.rpm_url(build, rpm, sigkey))
    return PackageScan(meta=meta, elves=found.elves, elf_files=found.elf_files)


def meta_from_koji(build: BuildInfo, rpm: RpmInfo, url: str) -> PackageMeta:
    return PackageMeta(
        kind="rpm",
        name=rpm["name"],
        epoch=rpm.get("epoch"),
        version=rpm["version"],
        release=rpm["release"],
        arch=rpm["arch"],
        source_name=build["name"],
        filename=rpm_filename(rpm),
        nvra=rpm_nvra(rpm),
        distro=rpm_distro(rpm["release"]),
        size=int(rpm.get("size") or 0),
        sigmd5=str(rpm.get("payloadhash") or ""),
        url=url,
    )


def compare(header: PackageScan, payload: PackageScan) -> list[str]:
    """Differences between header-first and payload rows (package_note is header-blind)."""

    def key(scan: PackageScan) -> set[tuple[str, str, int, int, int, bool | None, bool]]:
        return {(e.build_id.hex(), e.path, e.elf_type, e.machine, e.elf_class, e.big_endian,
                 e.debug) for e in scan.elves}

    nvra = payload.meta.nvra
    only_header = sorted(key(header) - key(payload))
    only_payload = sorted(key(payload) - key(header))
    notes = [f"{nvra}: header-first only: {row}" for row in only_header]
    notes += [f"{nvra}: payload only: {row}" for row in only_payload]
    if header.elf_files != payload.elf_files:
        notes.append(f"{nvra}: ELF files: header {header.elf_files}, payload {payload.elf_files}")
    return notes
