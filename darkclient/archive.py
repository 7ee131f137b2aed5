"""Members of an rpm or a deb, read as a stream; nothing is written under a member's own name.

``iter_members(stream)`` yields each member with a reader valid until the next one, so a
caller copies out only the members it wants (a debug file by its install path) into a place
it names itself. rpm: lead, signature header, main header, then a compressed cpio "newc"
payload (gzip, bzip2, xz/lzma, zstd). deb: an ar archive whose ``data.tar.*`` holds the files.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol, cast

from darkclient.errors import FormatError, TruncatedError

RPM_LEAD_MAGIC = b"\xed\xab\xee\xdb"
RPM_HEADER_MAGIC = b"\x8e\xad\xe8\x01"
RPMTAG_PAYLOADFORMAT, RPMTAG_PAYLOADCOMPRESSOR = 1124, 1125
RPM_STRING_TYPE = 6
AR_MAGIC = b"!<arch>\n"
CPIO_NEWC = b"070701"
CPIO_CRC = b"070702"
CPIO_TRAILER = "TRAILER!!!"
S_IFMT, S_IFREG = 0o170000, 0o100000
MAX_HEADER_BYTES = 256 * 1024 * 1024
MAX_NAME = 64 * 1024


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(slots=True)
class Member:
    path: str  # absolute install path, e.g. /usr/lib/debug/usr/bin/foo-1-1.x86_64.debug
    size: int
    is_file: bool  # a regular file (not a directory, symlink or device)
    data: Readable  # reads this member's bytes; valid until the next member is produced
    link_key: tuple[int, int] | None = None  # (ino, dev) when hard-linked (nlink > 1)


class _Limited:
    """At most ``left`` bytes of an underlying stream."""

    def __init__(self, raw: Readable, size: int) -> None:
        self._raw, self.left = raw, size

    def read(self, n: int = -1, /) -> bytes:
        if n < 0 or n > self.left:
            n = self.left
        data = self._raw.read(n) if n else b""
        if len(data) < n:
            raise TruncatedError("archive member ends early (truncated package)")
        self.left -= len(data)
        return data

    def drain(self) -> None:
        while self.left:
            self.read(min(self.left, 1 << 20))


def _exact(raw: Readable, n: int, what: str) -> bytes:
    data = raw.read(n)
    if len(data) < n:
        raise TruncatedError(f"truncated package: {what} ends early")
    return data


def _normal(path: str) -> str:
    """The install path of a member name ("./usr/bin/x" -> "/usr/bin/x")."""
    path = path.removeprefix("./")
    return "/" + path.lstrip("/")


# --- rpm --------------------------------------------------------------------------------------


def _rpm_header(raw: Readable, pad: bool, what: str) -> dict[int, str]:
    """One rpm header; returns its string tags (all the payload reader needs)."""
    head = _exact(raw, 16, what)
    if head[:4] != RPM_HEADER_MAGIC:
        raise FormatError(f"corrupt rpm: bad {what} magic")
    count, size = struct.unpack(">II", head[8:16])
    if count * 16 + size > MAX_HEADER_BYTES:
        raise FormatError(f"corrupt rpm: implausible {what} size")
    index = _exact(raw, count * 16, what)
    data = _exact(raw, size, what)
    if pad and size % 8:
        _exact(raw, 8 - size % 8, what)
    out: dict[int, str] = {}
    for i in range(count):
        tag, typ, off, _cnt = struct.unpack_from(">IIII", index, i * 16)
        if typ == RPM_STRING_TYPE and off < size:
            out[tag] = data[off:data.index(b"\0", off) if b"\0" in data[off:] else size].decode(
                "utf-8", "replace")
    return out


def _decompressor(raw: IO[bytes], compressor: str) -> Readable:
    if compressor in ("", "gzip"):
        return gzip.GzipFile(fileobj=raw)
    if compressor == "bzip2":
        return bz2.BZ2File(raw)
    if compressor in ("xz", "lzma"):
        return lzma.LZMAFile(raw)
    if compressor == "zstd":
        try:
            import zstandard
        except ImportError:
            raise FormatError("zstd payload needs the 'zstandard' module") from None
        return cast(Readable, zstandard.ZstdDecompressor().stream_reader(raw))
    if compressor == "identity":
        return raw
    raise FormatError(f"unsupported rpm payload compressor {compressor!r}")


def _iter_cpio(raw: Readable) -> Iterator[Member]:
    # Hard links: newc stores the data once, with the last link; earlier links have size 0.
    while True:
        head = _exact(raw, 110, "cpio header")
        magic = head[:6]
        if magic not in (CPIO_NEWC, CPIO_CRC):
            if magic[:5] == b"07070":
                raise FormatError("stripped cpio payload (rpm v6 / files over 4 GiB) "
                                  "is not supported by this client")
            raise FormatError("corrupt rpm payload: not a cpio newc archive")
        try:
            fields = [int(head[6 + 8 * i: 14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise FormatError("corrupt cpio header") from None
        ino, mode, nlink, filesize, namesize = fields[0], fields[1], fields[4], fields[6], \
            fields[11]
        if namesize > MAX_NAME:
            raise FormatError("corrupt cpio header: implausible name size")
        name = _exact(raw, namesize, "cpio name")[:-1].decode("utf-8", "surrogateescape")
        _exact(raw, (-(110 + namesize)) % 4, "cpio padding")
        if name == CPIO_TRAILER:
            return
        body = _Limited(raw, filesize)
        link = (ino, fields[7] << 32 | fields[8]) if nlink > 1 else None
        yield Member(_normal(name), filesize, (mode & S_IFMT) == S_IFREG, body, link)
        body.drain()
        _exact(raw, (-filesize) % 4, "cpio padding")


def iter_rpm(raw: IO[bytes]) -> Iterator[Member]:
    lead = _exact(raw, 96, "rpm lead")
    if lead[:4] != RPM_LEAD_MAGIC:
        raise FormatError("not an rpm (bad lead magic)")
    _rpm_header(raw, True, "signature header")
    tags = _rpm_header(raw, False, "header")
    fmt = tags.get(RPMTAG_PAYLOADFORMAT, "cpio")
    if fmt != "cpio":
        raise FormatError(f"unsupported rpm payload format {fmt!r}")
    try:
        stream = _decompressor(raw, tags.get(RPMTAG_PAYLOADCOMPRESSOR, "gzip"))
        yield from _iter_cpio(stream)
        # Read to the end so a truncated or corrupt compressed stream is noticed by a reader
        # that walks the whole package (one that stops early has what it wanted already).
        while stream.read(1 << 20):
            pass
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise FormatError(f"corrupt rpm payload: {exc}") from None


# --- deb --------------------------------------------------------------------------------------


def iter_deb(raw: IO[bytes]) -> Iterator[Member]:
    if _exact(raw, 8, "ar magic") != AR_MAGIC:
        raise FormatError("not a deb (bad ar magic)")
    while True:
        head = raw.read(60)
        if not head:
            raise FormatError("deb has no data.tar member")
        if len(head) < 60:
            raise TruncatedError("truncated deb: ar header ends early")
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(head[48:58].decode("ascii").strip())
        except ValueError:
            raise FormatError("corrupt deb: bad ar member size") from None
        body = _Limited(raw, size)
        if name.startswith("data.tar"):
            yield from _iter_tar(body, name)
            return
        body.drain()
        if size % 2:
            raw.read(1)


def _iter_tar(body: _Limited, name: str) -> Iterator[Member]:
    suffix = name[len("data.tar"):]
    compressor = {"": "identity", ".gz": "gzip", ".bz2": "bzip2", ".xz": "xz",
                  ".lzma": "lzma", ".zst": "zstd"}.get(suffix)
    if compressor is None:
        raise FormatError(f"unsupported deb data member {name!r}")
    stream = _decompressor(cast(IO[bytes], body), compressor)
    try:
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|") as tar:
            for info in tar:
                reader = tar.extractfile(info) if info.isreg() else None
                yield Member(_normal(info.name), info.size, info.isreg(),
                             cast(Readable, reader) if reader else _Limited(body, 0))
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as exc:
        raise FormatError(f"corrupt deb data: {exc}") from None


def iter_members(raw: IO[bytes]) -> Iterator[Member]:
    """Members of the rpm or deb in ``raw`` (detected by magic)."""
    head = raw.read(8)
    raw.seek(0)
    if head[:4] == RPM_LEAD_MAGIC:
        return iter_rpm(raw)
    if head == AR_MAGIC:
        return iter_deb(raw)
    raise FormatError("not an rpm or deb package")
