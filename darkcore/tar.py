"""A streaming tar reader for data.tar: ustar, GNU long names and pax headers.

Python's tarfile in stream mode re-slices a small buffer for every header and ends iteration
quietly at a corrupt header; a kernel image's data.tar has 4,000+ members, so reading headers
ourselves from one large buffer is several times faster and lets every corruption be an error.

    for entry in iter_tar(stream, what="data.tar.xz"):
        entry.name, entry.size, entry.type, entry.linkname
        entry.data.read(...)   # regular files; the unread rest is skipped when iteration goes on
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from darkcore.compression import BoundedReader
from darkcore.errors import FormatError, TruncatedError
from darkcore.limits import Budget

BLOCK = 512
_BUFFER = 1 << 20
# Longest GNU long-name or pax record we accept: real ones are a few hundred bytes.
_MAX_META = 1 << 20

_TYPES = {b"0": "file", b"\0": "file", b"7": "file", b"1": "hardlink", b"2": "symlink",
          b"5": "dir"}


@dataclass(slots=True)
class TarEntry:
    name: str
    size: int
    type: str  # file, hardlink, symlink, dir, other
    linkname: str
    data: BoundedReader | None  # regular files only
    mtime: int = 0  # seconds since the epoch (debuginfod's Last-Modified)


def _number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for sizes >= 8 GiB
        value = int.from_bytes(field[1:], "big")
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise FormatError(f"{what}: corrupt tar header (bad number {field!r})") from None


def _mtime(pax: str | None, field: bytes, what: str) -> int:
    """A pax mtime ("1700000000.5") wins over the header's octal field."""
    if pax:
        try:
            return int(float(pax))
        except ValueError:
            raise FormatError(f"{what}: corrupt pax mtime {pax!r}") from None
    return _number(field, what)


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156].split(b"\0", 1)[0].strip(b" ")
    try:
        expected = int(stored, 8)
    except ValueError:
        return False
    unsigned = sum(header[:148]) + 8 * 0x20 + sum(header[156:])
    return expected == unsigned


def _pax(data: bytes, what: str) -> dict[str, str]:
    records: dict[str, str] = {}
    at = 0
    while at < len(data):
        space = data.find(b" ", at)
        if space < 0:
            break
        try:
            length = int(data[at:space])
        except ValueError:
            raise FormatError(f"{what}: corrupt pax header") from None
        if length <= 0 or at + length > len(data):
            raise FormatError(f"{what}: corrupt pax header")
        key, _, value = data[space + 1 : at + length - 1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        at += length
    return records


def iter_tar(stream: BinaryIO, what: str = "tar", budget: Budget | None = None
             ) -> Iterator[TarEntry]:
    """Every member of a tar stream, in order; raises FormatError/TruncatedError. ``budget``
    counts every header (extension headers too) against the member limit."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(
        _Raw(stream), _BUFFER
    )
    src = cast(BinaryIO, buffered)
    long_name = long_link = None
    pax: dict[str, str] = {}
    while True:
        header = src.read(BLOCK)
        if len(header) < BLOCK:
            if not header:
                return  # some writers omit the end-of-archive blocks
            raise TruncatedError(f"{what} truncated: it ends inside a member header")
        if header.count(0) == BLOCK:
            return  # end-of-archive marker; the caller drains what follows
        if not _checksum_ok(header):
            raise FormatError(f"{what}: corrupt member header (checksum mismatch)")
        if budget is not None:
            budget.member()
        size = _number(header[124:136], what)
        typeflag = header[156:157]
        if typeflag in (b"L", b"K", b"x", b"g"):
            if size > _MAX_META:
                raise FormatError(f"{what}: implausibly large tar extension header ({size})")
            payload = BoundedReader(src, size, f"{what} extension header").read()
            _skip_padding(src, size, what)
            if typeflag == b"L":
                long_name = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif typeflag == b"K":
                long_link = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif typeflag == b"x":
                pax = _pax(payload, what)
            continue
        name = _text(header[0:100])
        if header[257:262] == b"ustar" and header[345] and not long_name:
            name = _text(header[345:500]) + "/" + name
        name = pax.get("path") or long_name or name
        linkname = pax.get("linkpath") or long_link or _text(header[157:257])
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise FormatError(f"{what}: corrupt pax size") from None
        mtime = _mtime(pax.get("mtime"), header[136:148], what)
        long_name = long_link = None
        pax = {}
        kind = _TYPES.get(typeflag, "other")
        if kind == "dir" or (typeflag == b"\0" and name.endswith("/")):
            kind, name = "dir", name.rstrip("/") or "/"
        # Only regular files carry data; everything else stores size 0 or data we skip.
        data = BoundedReader(src, size, f"{what} member {name!r}")
        entry = TarEntry(name, size if kind == "file" else 0, kind, linkname,
                         data if kind == "file" else None, mtime)
        yield entry
        data.skip()
        _skip_padding(src, size, what)


class _Raw(io.RawIOBase):
    """Any object with ``readinto`` as a raw stream, so that it can be buffered."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        return int(cast(io.RawIOBase, self._stream).readinto(buffer) or 0)


def _skip_padding(src: BinaryIO, size: int, what: str) -> None:
    pad = -size % BLOCK
    if pad and len(src.read(pad)) != pad:
        raise TruncatedError(f"{what} truncated: it ends inside a member's data")
