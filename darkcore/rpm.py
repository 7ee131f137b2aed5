"""Binary rpm reader: lead, signature header, main header, then the payload's cpio members.

    package = RpmReader(stream)          # reads and checks everything up to the payload
    package.name, .version, ..., .files()  # header data, no payload needed
    for member in package.members(): ...   # decompressed cpio members, lazily

Layout [rpm docs/manual/format_v4.md]: a 96-byte lead (magic ED AB EE DB), the signature
header padded to 8 bytes, the main header, the (compressed) payload to EOF. A header is magic
8E AD E8 01, 4 reserved bytes, u32 BE index count, u32 BE data length, 16-byte index entries
(tag, type, offset, count) and the data store they point into.

SIGMD5 (signature tag 1004) is the MD5 of everything after the signature header; it is what
Koji calls payloadhash. When present it is checked as the payload is read, so a corrupt
package is caught even when its compression has no checksum of its own (or has none at all).
"""

from __future__ import annotations

import hashlib
import io
import stat
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from darkcore.compression import (
    CHUNK,
    DigestReader,
    drain,
    open_decompressed,
    read_exact,
    sniff,
    sniff_compression,
)
from darkcore.cpio import CpioMember, StrippedFile, iter_cpio
from darkcore.errors import FormatError, UnsupportedPackage

LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
LEAD_SIZE = 96
MAX_TAGS = 0xFFFF  # rpm's own sanity limits (hdrchkTags / HEADER_DATA_MAX)
MAX_DATA = 0x0FFFFFFF

# Main header tags
NAME, VERSION, RELEASE, EPOCH, ARCH = 1000, 1001, 1002, 1003, 1022
FILESIZES, FILEMODES, FILELINKTOS, FILEFLAGS = 1028, 1030, 1036, 1037
OLDFILENAMES, SOURCERPM = 1027, 1044
FILEDEVICES, FILEINODES = 1095, 1096
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
PAYLOADFORMAT, PAYLOADCOMPRESSOR = 1124, 1125
LONGFILESIZES = 5008
# Signature header tags
SIG_MD5 = 1004

RPMFILE_GHOST = 1 << 6  # %ghost files are in the header but never in the payload

# Header data types: (struct code, size) for the fixed-size ones
_INT_TYPES = {1: ("B", 1), 2: ("B", 1), 3: ("H", 2), 4: ("I", 4), 5: ("Q", 8)}
STRING, BIN, STRING_ARRAY, I18NSTRING = 6, 7, 8, 9

PAYLOAD_COMPRESSORS = {  # PAYLOADCOMPRESSOR values -> compression.py kinds
    "gzip": "gzip", "bzip2": "bzip2", "xz": "xz", "lzma": "lzma", "zstd": "zstd",
    "identity": "none", "none": "none", "uncompressed": "none",
}

TagValue = str | bytes | tuple[int, ...] | tuple[str, ...]


class RpmHeader:
    """One header structure; tags are decoded on first use (a kernel's has 10^4 file names)."""

    def __init__(self, index: bytes, store: bytes, what: str) -> None:
        self._store = store
        self._what = what
        self._entries: dict[int, tuple[int, int, int]] = {}
        self._cache: dict[int, TagValue] = {}
        for i in range(0, len(index), 16):
            tag, kind, offset, count = struct.unpack_from(">IIII", index, i)
            self._check_entry(tag, kind, offset, count)
            self._entries[tag] = (kind, offset, count)

    def _check_entry(self, tag: int, kind: int, offset: int, count: int) -> None:
        if kind > I18NSTRING:
            raise FormatError(f"{self._what}: tag {tag} has unknown type {kind}")
        if kind == 0:  # NULL entries carry nothing
            return
        if count == 0 or offset >= len(self._store):
            raise FormatError(f"{self._what}: tag {tag} points outside the data "
                              f"(offset {offset}, count {count}, data {len(self._store)} bytes)")
        size = _INT_TYPES[kind][1] * count if kind in _INT_TYPES else count if kind == BIN else 0
        if offset + size > len(self._store):
            raise FormatError(f"{self._what}: tag {tag} runs past the end of the data")

    def __contains__(self, tag: int) -> bool:
        return tag in self._entries

    def get(self, tag: int) -> TagValue | None:
        if tag not in self._entries:
            return None
        if tag not in self._cache:
            self._cache[tag] = self._decode(tag, *self._entries[tag])
        return self._cache[tag]

    def _decode(self, tag: int, kind: int, offset: int, count: int) -> TagValue:
        store = self._store
        if kind in _INT_TYPES:
            code, _size = _INT_TYPES[kind]
            return struct.unpack_from(f">{count}{code}", store, offset)
        if kind == BIN:
            return store[offset : offset + count]
        if kind == STRING:
            count = 1
        strings = []
        at = offset
        for _ in range(count):
            end = store.find(b"\0", at)
            if end < 0:
                raise FormatError(f"{self._what}: tag {tag} has an unterminated string")
            strings.append(store[at:end].decode("utf-8", "backslashreplace"))
            at = end + 1
        return strings[0] if kind == STRING else tuple(strings)

    def string(self, tag: int) -> str | None:
        value = self.get(tag)
        if value is None:
            return None
        if isinstance(value, tuple) and value and isinstance(value[0], str):  # I18N / array
            return str(value[0])
        if not isinstance(value, str):
            raise FormatError(f"{self._what}: tag {tag} is not a string")
        return value

    def strings(self, tag: int) -> tuple[str, ...]:
        value = self.get(tag)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, tuple) or (value and not isinstance(value[0], str)):
            raise FormatError(f"{self._what}: tag {tag} is not a string array")
        return tuple(str(v) for v in value)

    def integers(self, tag: int) -> tuple[int, ...]:
        value = self.get(tag)
        if value is None:
            return ()
        if not isinstance(value, tuple) or (value and not isinstance(value[0], int)):
            raise FormatError(f"{self._what}: tag {tag} is not an integer array")
        return tuple(int(v) for v in value)

    def binary(self, tag: int) -> bytes | None:
        value = self.get(tag)
        if value is not None and not isinstance(value, bytes):
            raise FormatError(f"{self._what}: tag {tag} is not binary data")
        return value


def read_header(stream: BinaryIO, what: str) -> tuple[RpmHeader, int]:
    """Read one header structure; returns it and the number of bytes it took."""
    intro = read_exact(stream, 16, what)
    if intro[:4] != HEADER_MAGIC:
        raise FormatError(f"{what}: bad magic {intro[:4].hex()}")
    count, length = struct.unpack(">II", intro[8:16])
    if count > MAX_TAGS or length > MAX_DATA:
        raise FormatError(f"{what}: absurd size ({count} tags, {length} data bytes)")
    index = read_exact(stream, 16 * count, what)
    store = read_exact(stream, length, what)
    return RpmHeader(index, store, what), 16 + 16 * count + length


@dataclass(frozen=True, slots=True)
class RpmFile:
    """One entry of the header's file list."""

    path: str  # absolute, as in the header
    mode: int
    size: int
    linkto: str  # symlink target ("" for anything else)
    inode: int
    device: int
    flags: int

    @property
    def ghost(self) -> bool:
        return bool(self.flags & RPMFILE_GHOST)


class RpmReader:
    """A binary rpm read from a stream, positioned at its payload after construction."""

    def __init__(self, stream: BinaryIO) -> None:
        lead = read_exact(stream, LEAD_SIZE, "rpm lead")
        if lead[:4] != LEAD_MAGIC:
            raise FormatError(f"not an rpm: bad lead magic {lead[:4].hex()}")
        self.signature, size = read_header(stream, "rpm signature header")
        read_exact(stream, -size % 8, "rpm signature header padding")
        sigmd5 = self.signature.binary(SIG_MD5)
        self.sigmd5 = sigmd5.hex() if sigmd5 and len(sigmd5) == 16 else ""
        # Everything from here on is covered by SIGMD5.
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._stream = io.BufferedReader(DigestReader(stream, self._md5), CHUNK)
        self.header, _ = read_header(self._stream, "rpm header")
        h = self.header
        self.name = self._required(NAME)
        self.version = self._required(VERSION)
        self.release = self._required(RELEASE)
        self.arch = h.string(ARCH) or ""
        epoch = h.integers(EPOCH)
        self.epoch: int | None = epoch[0] if epoch else None
        self.sourcerpm = h.string(SOURCERPM) or ""
        if not self.sourcerpm or lead[6:8] == b"\x00\x01":
            raise UnsupportedPackage("source rpm")
        self.payload_format = h.string(PAYLOADFORMAT) or "cpio"
        self.payload_compressor = h.string(PAYLOADCOMPRESSOR) or "gzip"

    def _required(self, tag: int) -> str:
        value = self.header.string(tag)
        if not value:
            raise FormatError(f"rpm header: required tag {tag} is missing")
        return value

    @property
    def nvra(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"

    def files(self) -> list[RpmFile]:
        """The header's file list (every file, %ghost ones included), in header order."""
        h = self.header
        paths = self._paths()
        n = len(paths)
        sizes = h.integers(LONGFILESIZES) or h.integers(FILESIZES)
        columns = {
            "sizes": sizes,
            "modes": h.integers(FILEMODES),
            "inodes": h.integers(FILEINODES),
            "devices": h.integers(FILEDEVICES),
            "flags": h.integers(FILEFLAGS),
        }
        for label, column in columns.items():
            if column and len(column) != n:
                raise FormatError(f"rpm header: {len(column)} file {label} for {n} files")
        linktos = h.strings(FILELINKTOS)
        if linktos and len(linktos) != n:
            raise FormatError(f"rpm header: {len(linktos)} link targets for {n} files")

        def col(c: Sequence[int], i: int) -> int:
            return c[i] if c else 0

        return [
            RpmFile(paths[i], col(columns["modes"], i), col(sizes, i),
                    linktos[i] if linktos else "", col(columns["inodes"], i),
                    col(columns["devices"], i), col(columns["flags"], i))
            for i in range(n)
        ]

    def _paths(self) -> list[str]:
        h = self.header
        basenames = h.strings(BASENAMES)
        if not basenames:
            return list(h.strings(OLDFILENAMES))  # rpm < 4.0 packages
        dirnames, dirindexes = h.strings(DIRNAMES), h.integers(DIRINDEXES)
        if len(dirindexes) != len(basenames):
            raise FormatError(f"rpm header: {len(dirindexes)} dir indexes for "
                              f"{len(basenames)} file names")
        try:
            return [dirnames[d] + b for d, b in zip(dirindexes, basenames, strict=True)]
        except IndexError:
            raise FormatError("rpm header: a file's directory index is out of range") from None

    def stripped_table(self) -> list[StrippedFile]:
        """Per file index, what a stripped cpio entry stands for (rpm lib/rpmfi.c rules)."""
        files = self.files()
        # Hard-link sets: regular, non-ghost files sharing (device, inode); only the last
        # index of a set carries the data in the archive.
        groups: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(files):
            if stat.S_ISREG(f.mode) and not f.ghost and f.inode > 0:
                groups.setdefault((f.device, f.inode), []).append(i)
        table = []
        for i, f in enumerate(files):
            links = groups.get((f.device, f.inode), [i]) if stat.S_ISREG(f.mode) else [i]
            if stat.S_ISREG(f.mode):
                size = f.size if links[-1] == i else 0
            elif stat.S_ISLNK(f.mode):
                size = f.size  # the link target is stored as data
            else:
                size = 0
            table.append(StrippedFile(f.path, f.mode, size, f.inode, f.device, len(links)))
        return table

    def members(self) -> Iterator[CpioMember]:
        """The payload's cpio members; at the end, the payload is checked to its last byte."""
        if self.payload_format not in ("cpio", ""):
            raise UnsupportedPackage(f"rpm payload format {self.payload_format!r}")
        # Trust the bytes over the tag: rpm writes no tag for an uncompressed payload and
        # reads it through zlib, which passes non-gzip data through unchanged.
        head, source = sniff(self._stream)
        kind = sniff_compression(head)
        if not kind:
            kind = PAYLOAD_COMPRESSORS.get(self.payload_compressor, "")
            if not kind:
                raise FormatError(f"rpm payload: unknown compressor {self.payload_compressor!r}")
        payload = open_decompressed(source, kind)
        try:
            yield from iter_cpio(payload, self.stripped_table)
            drain(payload)  # the compressed stream's own end and checksum
        finally:
            if payload is not source:
                payload.close()
        drain(self._stream)
        if self.sigmd5 and self._md5.hexdigest() != self.sigmd5:
            raise FormatError("rpm payload corrupt: MD5 of header and payload does not match "
                              "the signature's SIGMD5")


def iter_rpm_members(stream: BinaryIO) -> Iterator[CpioMember]:
    """The cpio members of the rpm in ``stream`` (headers read and checked first)."""
    return RpmReader(stream).members()
