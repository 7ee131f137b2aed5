"""One package file in, one PackageScan out (no database).

    scan_path(path, options) -> PackageScan
    scan_stream(stream, filename, options) -> PackageScan

Both raise darkcore.errors.PackageError subclasses (UnsupportedPackage for source rpms and
unknown formats; FormatError/TruncatedError/DecompressionError for broken packages). This is
the package boundary: a broken container (header, payload, decompression, cpio or tar) fails
the whole package, a broken ELF member or a hostile member path only adds a warning. A scan
is returned only when the package was read to its last byte, so it is never partial.

The file is read once, as a stream: its SHA-256 and size are taken on the way through, ELF
members are read into memory (or, past ELF_IN_MEMORY, into an anonymous temporary file) and
everything else is skipped in chunks without being kept.

Integrity and bounds: the readers check every digest the package carries (darkcore.rpm,
darkcore.deb) and fail it with IntegrityError on a mismatch; a package that carries none is
scanned and marked ``verified=False``. ``ScanOptions.limits`` (darkcore.limits) bounds the
decompressed bytes, the members, the bytes of ELF members held, and the warnings kept.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import re
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from typing import IO, BinaryIO, Protocol, cast

from darkcore import urltemplates
from darkcore.compression import CHUNK, DigestReader, drain, sniff
from darkcore.deb import DebControl, DebReader
from darkcore.elf import ElfInfo, read_elf, read_elf_bytes
from darkcore.errors import FormatError, PackageError, TruncatedError, UnsupportedPackage
from darkcore.limits import Budget
from darkcore.package import Package, is_package
from darkcore.paths import PathRejected, normalize_member_path
from darkcore.rpm import RpmReader
from darkimport.run.options import ScanOptions as ScanOptions  # re-exported: its old home
from darkimport.run.records import ElfRecord, PackageMeta, PackageScan

ELF_MAGIC = b"\x7fELF"
ELF_IN_MEMORY = 32 << 20  # larger ELF members go to an anonymous temporary file
DEBUG_PREFIX = "/usr/lib/debug/"  # separate debug files, .dwz files under /usr/lib/debug/.dwz
# The file names of packages: what a directory import picks up, and what a file that is not a
# package must not be named. Debian's debug (.ddeb) and installer (.udeb) packages are debs.
PACKAGE_SUFFIXES = (".rpm", ".deb", ".ddeb", ".udeb")
# Errors from the standard library that mean "these bytes are not what they claim to be".
_FORMAT_ERRORS = (tarfile.TarError, EOFError, struct.error, UnicodeError, zlib.error,
                  lzma.LZMAError, ValueError, IndexError)


def scan_path(path: str | os.PathLike[str], options: ScanOptions | None = None) -> PackageScan:
    with open(path, "rb", buffering=0) as f:
        return scan_stream(cast(BinaryIO, f), os.path.basename(path), options)


def scan_stream(stream: BinaryIO, filename: str, options: ScanOptions | None = None
                ) -> PackageScan:
    options = options or ScanOptions()
    sha256 = hashlib.sha256()
    counted = DigestReader(stream, sha256)
    magic, source = sniff(io.BufferedReader(counted, CHUNK), 8)
    budget = Budget(options.limits)
    try:
        if not magic:
            raise TruncatedError("empty file")
        if not is_package(magic):
            if filename.endswith(PACKAGE_SUFFIXES):
                raise FormatError(f"not a package: no rpm or deb magic (starts with {magic!r})")
            raise UnsupportedPackage("not an rpm or deb package")
        package = Package(source, budget)
        collected = _Collector(budget)
        for member in package.members():
            if member.is_regular and member.data is not None:
                collected.add_file(member.names, member.size, member.data)
            elif member.type == "hardlink":
                collected.add_link(member.name, member.linkname)
        if package.rpm is not None:
            scan = _rpm_scan(package.rpm, filename, options, collected)
        else:
            assert package.deb is not None
            scan = _deb_scan(package.deb, filename, options, collected)
        drain(source)  # the SHA-256 covers the whole file
    except PackageError:
        raise
    except _FORMAT_ERRORS as exc:
        raise FormatError(f"unreadable package: {type(exc).__name__}: {exc}") from exc
    scan.meta.size = counted.count
    scan.meta.sha256 = sha256.hexdigest()
    return scan


# --- members -----------------------------------------------------------------------------


class _Data(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...
    def readinto(self, buffer: memoryview | bytearray, /) -> int: ...


class _Collector:
    """Turns archive members into ElfRecords, counts and warnings."""

    def __init__(self, budget: Budget) -> None:
        self.records: dict[str, ElfRecord] = {}  # by path: a repeated path keeps its last
        self.infos: dict[str, ElfInfo] = {}  # ELF files by path, for tar hard links
        self.elf_files = 0
        self.without_build_id = 0
        self.budget = budget
        self.warnings: list[str] = []
        self.dropped_warnings = 0

    def warn(self, message: str) -> None:
        """Keep the first ``limits.warnings`` warnings; count the rest (one line at the end)."""
        if len(self.warnings) < self.budget.limits.warnings:
            self.warnings.append(message)
        else:
            self.dropped_warnings += 1

    def path(self, name: str) -> str | None:
        try:
            return normalize_member_path(name)
        except PathRejected as exc:
            self.warn(str(exc))
            return None

    def add_file(self, names: Sequence[str], size: int, data: _Data) -> None:
        """One regular file with all its (hard-linked) names; reads only what it needs."""
        paths = [p for p in map(self.path, names) if p is not None]
        if not paths or size < 4:
            return
        head = data.read(4)
        if head != ELF_MAGIC:
            return  # the container skips the rest
        # Read first, parse second: a short read is the container's fault and fails the
        # package; a bad ELF header is this member's and only costs a warning.
        self.budget.spool(size, paths[0])
        if size <= ELF_IN_MEMORY:
            view = _read_whole(head, size, data)
            self._parse(paths, lambda: read_elf_bytes(view))
            return
        with tempfile.TemporaryFile() as spool:
            _spool(head, size, data, spool)
            self._parse(paths, lambda: read_elf(cast(BinaryIO, spool)))

    def _parse(self, paths: list[str], parse: _Parse) -> None:
        try:
            info = parse()
        except (PackageError, struct.error, ValueError, IndexError, UnicodeError) as exc:
            self.elf_files += 1
            self.without_build_id += 1
            self.warn(f"{paths[0]}: unreadable ELF file, counted without a build-id: {exc}")
            return
        if info is None:
            return
        self.elf_files += 1
        if info.build_id is None:
            self.without_build_id += 1
        for path in paths:
            self._record(path, info)

    def add_link(self, name: str, target: str) -> None:
        """A tar hard link: the same file as an earlier member."""
        path = self.path(name)
        if path is None:
            return
        try:
            info = self.infos.get(normalize_member_path(target))
        except PathRejected:
            info = None
        if info is not None:
            self._record(path, info)

    def _record(self, path: str, info: ElfInfo) -> None:
        self.infos[path] = info
        if info.build_id is not None:
            self.records[path] = ElfRecord(
                info.build_id, path, info.elf_type, info.machine, info.elf_class,
                info.big_endian, path.startswith(DEBUG_PREFIX), info.package_note)


class _Parse(Protocol):
    def __call__(self) -> ElfInfo | None: ...


def _read_whole(head: bytes, size: int, data: _Data) -> memoryview:
    """The member's bytes in one buffer (ELF section headers sit at the end of the file)."""
    buf = bytearray(size)
    buf[:4] = head
    view = memoryview(buf)
    at = 4
    while at < size:
        n = data.readinto(view[at : at + CHUNK])
        if not n:
            raise TruncatedError("archive member truncated")
        at += n
    return view


def _spool(head: bytes, size: int, data: _Data, spool: IO[bytes]) -> None:
    """The member into ``spool``; runs of zeros become holes (an ELF header followed by
    gigabytes of zeros costs decompression time, not disk)."""
    spool.write(head)
    buffer = bytearray(CHUNK)
    scratch = memoryview(buffer)
    left = size - 4
    while left:
        n = data.readinto(scratch[: min(left, CHUNK)])
        if not n:
            raise TruncatedError("archive member truncated")
        # bytearray == bytes is one memcmp (~20 GB/s); memoryview comparison is 200x slower.
        if (buffer if n == CHUNK else buffer[:n]) == (_ZEROS if n == CHUNK else _ZEROS[:n]):
            spool.seek(n, os.SEEK_CUR)
        else:
            spool.write(scratch[:n])
        left -= n
    spool.truncate(size)
    spool.seek(0)


_ZEROS = bytes(CHUNK)


def _finish(meta: PackageMeta, collected: _Collector, verified: bool) -> PackageScan:
    if collected.dropped_warnings:
        collected.warnings.append(f"... and {collected.dropped_warnings} more warnings")
    return PackageScan(meta, list(collected.records.values()), collected.elf_files,
                       collected.without_build_id, collected.warnings, verified)


# --- rpm ---------------------------------------------------------------------------------


def _rpm_scan(rpm: RpmReader, filename: str, options: ScanOptions,
              collected: _Collector) -> PackageScan:
    meta = PackageMeta(
        kind="rpm", name=rpm.name, epoch=rpm.epoch, version=rpm.version, release=rpm.release,
        arch=rpm.arch, source_name=srpm_name(rpm.sourcerpm), filename=filename, nvra=rpm.nvra,
        distro=rpm_distro(rpm.release), sigmd5=rpm.sigmd5,
    )
    _set_url(meta, options, collected)
    return _finish(meta, collected, rpm.verified)


def srpm_name(sourcerpm: str) -> str:
    """"apr-1.4.5-1.fc16.src.rpm" -> "apr" (name-version-release: the name may hold '-')."""
    base = sourcerpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else base


_DIST_TAG = re.compile(r"(?:fc|el|eln|mga|amzn|ol|an|ocs|oe|mdv|azl|cm|ph)\d+")


def rpm_distro(release: str) -> str:
    """The dist tag in an rpm release: "1.fc40" -> fc40, "3.el9_2" -> el9,
    "1.module+el8.4.0+1234+abcd" -> el8; "" when the release has none."""
    for component in reversed(release.split(".")):
        for piece in reversed(component.split("+")):
            tag = re.sub(r"_\d+$", "", piece)
            if _DIST_TAG.fullmatch(tag):
                return tag
    return ""


# --- deb ---------------------------------------------------------------------------------


def _deb_scan(deb: DebReader, filename: str, options: ScanOptions,
              collected: _Collector) -> PackageScan:
    control = deb.control
    assert control is not None  # DebReader.members() fails without one
    meta = deb_meta(control, filename, options)
    _check_listed_build_ids(control, collected)
    _set_url(meta, options, collected)
    return _finish(meta, collected, deb.verified)


def split_deb_version(version: str) -> tuple[int | None, str, str]:
    """"1:2.3-4" -> (1, "2.3", "4"); a native "2.3" -> (None, "2.3", "")."""
    epoch: int | None = None
    if ":" in version:
        head, rest = version.split(":", 1)
        if not head.isdigit():
            raise FormatError(f"control file: bad epoch in version {version!r}")
        epoch, version = int(head), rest
    upstream, sep, revision = version.rpartition("-")
    return (epoch, upstream, revision) if sep else (epoch, version, "")


_DEB_RELEASE = re.compile(r"(?:^|[+~.-])deb(\d+)(?:u\d+)?")


def deb_distro(version: str, configured: str | None) -> str:
    if configured:
        return configured
    match = _DEB_RELEASE.search(version)
    if match:
        return f"deb{match.group(1)}"
    return "ubuntu" if "ubuntu" in version else "debian"


def deb_meta(control: DebControl, filename: str, options: ScanOptions) -> PackageMeta:
    epoch, version, revision = split_deb_version(control.version)
    plain = control.version.split(":", 1)[1] if ":" in control.version else control.version
    source_version = source_release = ""
    if control.source_version:
        _, source_version, source_release = split_deb_version(control.source_version)
    return PackageMeta(
        kind="deb", name=control.package, epoch=epoch, version=version, release=revision,
        arch=control.architecture, source_name=control.source, filename=filename,
        nvra=f"{control.package}_{plain}_{control.architecture}",
        distro=deb_distro(control.version, options.deb_distro),
        source_version=source_version, source_release=source_release,
    )


def _check_listed_build_ids(control: DebControl, collected: _Collector) -> None:
    found = {r.build_id.hex() for r in collected.records.values()}
    for listed in control.build_ids:
        if listed not in found:
            collected.warn(f"control lists build-id {listed} but no file has it")


# --- download URL ------------------------------------------------------------------------


def _set_url(meta: PackageMeta, options: ScanOptions, collected: _Collector) -> None:
    template = options.url_templates.get(meta.kind)
    if not template:
        return
    package = urltemplates.Package(
        kind=meta.kind, name=meta.name, epoch=meta.epoch, version=meta.version,
        release=meta.release, arch=meta.arch, filename=meta.filename, nvra=meta.nvra,
        distro=meta.distro, build_name=meta.source_name,
        # The build row's version and release (darkimport.run.store): the same on every side.
        build_version=meta.source_version or meta.version,
        build_release=meta.source_release if meta.source_version else meta.release)
    try:
        meta.url = urltemplates.render(template, urltemplates.fields(package))
    except urltemplates.TemplateError as exc:
        collected.warn(f"{exc}: no URL stored")
