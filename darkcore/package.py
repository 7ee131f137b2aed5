"""Any package stream, rpm or deb (told apart by its magic), as one kind of member record.

    package = Package(stream)              # rpm: headers read and checked; deb: ar magic
    package.kind                           # "rpm" or "deb"; package.rpm / package.deb
    for member in package.members(): ...   # lazily; member.data valid until the next one

The importer's scan and the client's extraction both walk packages through this, so both read
every payload the readers read (rpm: any compression, sniffed from the data, newc and stripped
cpio; deb: data.tar with any compression) and see the same member names. Names are as stored
("./usr/bin/x"); ``darkcore.paths.normalize_member_path`` turns them into install paths.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from darkcore.compression import BoundedReader, sniff
from darkcore.deb import AR_MAGIC, DebReader
from darkcore.errors import PackageError, TruncatedError, UnsupportedPackage
from darkcore.limits import Budget
from darkcore.paths import PathRejected, normalize_member_path
from darkcore.rpm import LEAD_MAGIC, RpmReader

FILEMTIMES = 1034  # rpm header tag: per-file modification times (the payload's own are the same)


@dataclass(slots=True)
class Member:
    names: tuple[str, ...]  # every name of this file (rpm hard links share one member), as stored
    size: int
    type: str  # file, hardlink (deb: ``linkname`` names the earlier member), symlink, dir, other
    data: BoundedReader | None  # regular files only; the iterator skips what is left unread
    linkname: str = ""
    mtime: int = 0  # seconds since the epoch; 0 when not asked for or unknown

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def is_regular(self) -> bool:
        return self.type == "file" and self.data is not None


def is_package(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts like an rpm or a deb."""
    return head.startswith((LEAD_MAGIC, AR_MAGIC))


class Package:
    """An rpm or deb read from ``stream`` (any readable stream; nothing is seeked)."""

    def __init__(self, stream: BinaryIO, budget: Budget | None = None) -> None:
        """``budget`` bounds what reading the package may cost (darkcore.limits); none: the
        defaults."""
        magic, source = sniff(stream, 8)
        self.rpm: RpmReader | None = None
        self.deb: DebReader | None = None
        if magic.startswith(LEAD_MAGIC):
            self.kind = "rpm"
            self.rpm = RpmReader(source, budget)
        elif magic.startswith(AR_MAGIC):
            self.kind = "deb"
            self.deb = DebReader(source, budget)
        elif not magic:
            raise TruncatedError("empty file")
        else:
            raise UnsupportedPackage(f"not an rpm or deb package (starts with {magic!r})")

    def members(self, mtimes: bool = False) -> Iterator[Member]:
        """Every member, in archive order; the whole package is read and checked by the end.
        ``mtimes`` fills ``Member.mtime`` (for rpms it costs a pass over the header's file list).
        """
        if self.rpm is not None:
            yield from _rpm_members(self.rpm, mtimes)
        elif self.deb is not None:
            for m in self.deb.members():
                yield Member((m.name,), m.size, m.type, m.data, m.linkname, m.mtime)


def _rpm_members(rpm: RpmReader, mtimes: bool) -> Iterator[Member]:
    when: dict[str, int] = {}
    if mtimes:
        times = rpm.header.integers(FILEMTIMES)
        for f, t in zip(rpm.files(), times, strict=False):
            with contextlib.suppress(PathRejected):
                when[normalize_member_path(f.path)] = t
    for m in rpm.members():
        kind = ("file" if m.is_regular else "symlink" if stat.S_ISLNK(m.mode)
                else "dir" if stat.S_ISDIR(m.mode) else "other")
        mtime = 0
        if when:
            with contextlib.suppress(PathRejected):
                mtime = when.get(normalize_member_path(m.name), 0)
        yield Member(m.names, m.size, kind, m.data if m.is_regular else None, "", mtime)


def iter_members(stream: BinaryIO, mtimes: bool = False) -> Iterator[Member]:
    """The members of the rpm or deb in ``stream``; raises darkcore.errors.PackageError."""
    return Package(stream).members(mtimes)


__all__ = ["Member", "Package", "PackageError", "is_package", "iter_members"]
