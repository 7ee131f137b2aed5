"""Lazy reader for the cpio archives inside rpm payloads.

Two entry formats, which rpm may mix in one archive (the trailer is always newc):

- "newc" (magic 070701, or 070702 with a data checksum we do not verify): a 110-byte header
  of 8-hex-digit fields, the NUL-terminated name, padding to 4, the data, padding to 4.
- rpm's "stripped" entry (magic 07070X): an 8-hex-digit index into the rpm header's file
  list, padding to 4, then the data. Name, mode, size and inode come from the header (rpm
  writes it whenever a file is >= 4 GiB, and always in rpm v6 packages).

Hard links: only the last entry of a link set carries the data, the earlier ones have size 0.
Those earlier names are held back and handed over with the entry that has the data
(``CpioMember.links``), so every path of the set can be recorded.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from darkcore.compression import BoundedReader, read_exact
from darkcore.errors import FormatError, TruncatedError
from darkcore.limits import Budget

NEWC_MAGICS = (b"070701", b"070702")
STRIPPED_MAGIC = b"07070X"
TRAILER = "TRAILER!!!"
NEWC_FIELDS = 13  # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
#                   namesize check
MAX_NAME = 1 << 16  # PATH_MAX is 4096; anything this large is a broken header
MAX_MEMBER = 1 << 42  # 4 TiB: an rpm header could claim more, no real file is that big


@dataclass(frozen=True, slots=True)
class StrippedFile:
    """What the rpm header says about one file index (all a stripped entry refers to)."""

    name: str
    mode: int
    size: int  # bytes of data in the archive for this index (0 for all but the last link)
    ino: int
    dev: int
    nlink: int


@dataclass(slots=True)
class CpioMember:
    name: str  # as stored: "./usr/bin/foo" (not normalised)
    mode: int
    size: int
    ino: int
    dev: int
    nlink: int
    data: BoundedReader  # read as much as wanted; the iterator skips the rest
    links: tuple[str, ...] = ()  # earlier names of the same hard-linked file

    @property
    def names(self) -> tuple[str, ...]:
        """Every path of this file: the held-back hard links, then this entry's name."""
        return (*self.links, self.name)

    @property
    def is_regular(self) -> bool:
        return stat.S_ISREG(self.mode)


def _pad4(n: int) -> int:
    return -n % 4


def _hex(field: bytes, what: str) -> int:
    try:
        return int(field, 16)
    except ValueError:
        raise FormatError(f"cpio {what}: field {field!r} is not hexadecimal") from None


def iter_cpio(
    stream: BinaryIO,
    stripped: Callable[[], Sequence[StrippedFile]] | None = None,
    budget: Budget | None = None,
) -> Iterator[CpioMember]:
    """Yield the members of the cpio archive in ``stream`` up to its trailer.

    ``stripped`` returns the rpm header's file table; it is needed (and called once) only when a
    stripped entry appears. A member's ``data`` must not be used after the iterator advances.
    ``budget`` counts every entry (held hard links included) against the member limit.
    """
    table: Sequence[StrippedFile] | None = None
    held: dict[tuple[int, int], list[str]] = {}  # hard links still waiting for their data
    index = 0
    while True:
        where = f"entry {index}"
        magic = stream.read(6)
        if not magic:
            raise TruncatedError(f"cpio archive ends without its trailer (after {index} entries)")
        if len(magic) < 6:
            raise TruncatedError(f"cpio {where}: header truncated")
        if magic == STRIPPED_MAGIC:
            if table is None:
                if stripped is None:
                    raise FormatError(f"cpio {where}: stripped entry outside an rpm payload")
                table = stripped()
            member: CpioMember | None = _read_stripped(stream, table, where)
        elif magic in NEWC_MAGICS:
            member = _read_newc(stream, where)
        else:
            raise FormatError(f"cpio {where}: bad magic {magic!r}")
        if member is None:  # the trailer
            break
        index += 1
        if budget is not None:
            budget.member()
        if member.is_regular and member.nlink > 1:
            key = (member.dev, member.ino)
            if member.size == 0:
                held.setdefault(key, []).append(member.name)
                continue
            member.links = tuple(held.pop(key, ()))
        yield member
        member.data.skip()
        read_exact(stream, _pad4(member.size), f"cpio {where} padding")
    # Link sets whose data never came are empty files; still report every name.
    for (dev, ino), names in held.items():
        empty = BoundedReader(stream, 0, "cpio member")
        yield CpioMember(names[-1], stat.S_IFREG, 0, ino, dev, len(names), empty,
                         tuple(names[:-1]))


def _read_newc(stream: BinaryIO, where: str) -> CpioMember | None:
    raw = read_exact(stream, 8 * NEWC_FIELDS, f"cpio {where} header")
    ino, mode, _uid, _gid, nlink, _mtime, size, dmaj, dmin, _rmaj, _rmin, namesize, _check = (
        _hex(raw[i : i + 8], where) for i in range(0, 8 * NEWC_FIELDS, 8)
    )
    if not 1 <= namesize <= MAX_NAME:
        raise FormatError(f"cpio {where}: absurd name size {namesize}")
    name_bytes = read_exact(stream, namesize + _pad4(110 + namesize), f"cpio {where} name")
    if name_bytes[namesize - 1] != 0:
        raise FormatError(f"cpio {where}: name is not NUL-terminated")
    name = name_bytes[: namesize - 1].decode("utf-8", "backslashreplace")
    if name == TRAILER:
        return None
    data = BoundedReader(stream, size, f"cpio member {name!r}")
    return CpioMember(name, mode, size, ino, (dmaj << 32) | dmin, nlink, data)


def _read_stripped(stream: BinaryIO, table: Sequence[StrippedFile], where: str) -> CpioMember:
    raw = read_exact(stream, 8 + _pad4(14), f"cpio {where} header")
    fx = _hex(raw[:8], where)
    if fx >= len(table):
        raise FormatError(f"cpio {where}: file index {fx} outside the header's {len(table)} files")
    f = table[fx]
    if not 0 <= f.size <= MAX_MEMBER:
        raise FormatError(f"cpio {where}: absurd size {f.size} for {f.name!r}")
    data = BoundedReader(stream, f.size, f"cpio member {f.name!r}")
    return CpioMember(f.name, f.mode, f.size, f.ino, f.dev, f.nlink, data)
