"""Binary rpm reader: lead, signature header, main header, then the payload's cpio members.

    package = RpmReader(stream)          # reads and checks everything up to the payload
    package.name, .version, ..., .files()  # header data, no payload needed
    for member in package.members(): ...   # decompressed cpio members, lazily

Layout [rpm docs/manual/format_v4.md]: a 96-byte lead (magic ED AB EE DB), the signature
header padded to 8 bytes, the main header, the (compressed) payload to EOF. A header is magic
8E AD E8 01, 4 reserved bytes, u32 BE index count, u32 BE data length, 16-byte index entries
(tag, type, offset, count) and the data store they point into.

Integrity before interpretation [rpm docs/manual/signatures_digests.md, format_v6.md]: the
main header's bytes are checked against every header digest the signature carries (SHA1HEADER,
SHA256HEADER, rpm v6's SHA3_256HEADER) before any of its fields is decoded, so a damaged
header can never decide what the package is (source rpm, compression, payload format). While
the payload streams by, every payload digest is computed and compared at its end: SIGMD5
(MD5 of header + payload, Koji's payloadhash), PAYLOADDIGEST (compressed payload, algorithm
PAYLOADDIGESTALGO), PAYLOADDIGESTALT (uncompressed), v6's SHA-512 and SHA3-256 pairs, and the
signature's SIZE. ELF members are also checked against the header's FILEDIGESTS as they are
read, so a damaged member fails even where no payload digest exists. A mismatch raises
IntegrityError. ``verified`` says whether the header and the payload were both covered by a
digest; a package that carries none is read, and reported as unverified by the caller.
"""

from __future__ import annotations

import hashlib
import io
import stat
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from darkcore.compression import (
    CHUNK,
    DigestReader,
    ElfDigestCheck,
    drain,
    open_decompressed,
    read_exact,
    sniff,
    sniff_compression,
)
from darkcore.cpio import CpioMember, StrippedFile, iter_cpio
from darkcore.errors import FormatError, IntegrityError, TruncatedError, UnsupportedPackage
from darkcore.limits import Budget, Limits

LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
LEAD_SIZE = 96
MAX_TAGS = 0xFFFF  # rpm's own sanity limits (hdrchkTags / HEADER_DATA_MAX)
MAX_DATA = 0x0FFFFFFF
MAX_SIGNATURE = 64 << 20  # IMA file signatures make it large; real ones are < 10 MB

# Main header tags
NAME, VERSION, RELEASE, EPOCH, ARCH = 1000, 1001, 1002, 1003, 1022
FILESIZES, FILEMODES, FILELINKTOS, FILEFLAGS = 1028, 1030, 1036, 1037
OLDFILENAMES, SOURCERPM = 1027, 1044
FILEDEVICES, FILEINODES = 1095, 1096
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
PAYLOADFORMAT, PAYLOADCOMPRESSOR = 1124, 1125
LONGFILESIZES = 5008
FILEDIGESTS, FILEDIGESTALGO = 1035, 5011
PAYLOADDIGEST, PAYLOADDIGESTALGO, PAYLOADDIGESTALT = 5092, 5093, 5097  # v6: PAYLOADSHA256[ALT]
PAYLOADSHA512, PAYLOADSHA512ALT, PAYLOADSHA3_256, PAYLOADSHA3_256ALT = 5121, 5122, 5123, 5124
# Signature header tags
SIG_SIZE, SIG_MD5 = 1000, 1004
SIG_SHA1HEADER, SIG_LONGSIZE, SIG_SHA256HEADER, SIG_SHA3_256HEADER = 269, 270, 273, 279
HEADER_DIGESTS = {SIG_SHA3_256HEADER: "sha3_256", SIG_SHA256HEADER: "sha256",
                  SIG_SHA1HEADER: "sha1"}  # strongest first: its name goes in the message
# rpm's hash algorithm numbers (OpenPGP's, plus rpm 6's SHA3) -> hashlib names
HASH_ALGOS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224",
              12: "sha3_256", 14: "sha3_512"}
LEAD_SOURCE_TYPE = b"\x00\x01"

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


def read_header_bytes(stream: BinaryIO, what: str) -> bytes:
    """One header structure's bytes (magic, counts, index, data), undecoded: what the
    signature's header digests cover."""
    intro = read_exact(stream, 16, what)
    if intro[:4] != HEADER_MAGIC:
        raise FormatError(f"{what}: bad magic {intro[:4].hex()}")
    count, length = struct.unpack(">II", intro[8:16])
    if count > MAX_TAGS or length > MAX_DATA:
        raise FormatError(f"{what}: absurd size ({count} tags, {length} data bytes)")
    return intro + read_exact(stream, 16 * count + length, what)


def parse_header(blob: bytes, what: str) -> RpmHeader:
    count = struct.unpack_from(">I", blob, 8)[0]
    return RpmHeader(blob[16 : 16 + 16 * count], blob[16 + 16 * count :], what)


def read_header(stream: BinaryIO, what: str) -> tuple[RpmHeader, int]:
    """Read one header structure; returns it and the number of bytes it took."""
    blob = read_header_bytes(stream, what)
    return parse_header(blob, what), len(blob)


def signature_length(head: bytes) -> int | None:
    """Where the main header starts (lead + signature header + its padding to 8), from the
    first bytes of an rpm; None while ``head`` is too short to tell."""
    if len(head) < LEAD_SIZE + 16:
        return None
    if head[:4] != LEAD_MAGIC:
        raise FormatError(f"not an rpm: bad lead magic {head[:4].hex()}")
    if head[LEAD_SIZE : LEAD_SIZE + 4] != HEADER_MAGIC:
        raise FormatError("rpm signature header: bad magic")
    count, length = (int(v) for v in struct.unpack_from(">II", head, LEAD_SIZE + 8))
    if count > MAX_TAGS or length > MAX_DATA:
        raise FormatError(f"rpm signature header: absurd size ({count} tags, {length} bytes)")
    size = 16 + 16 * count + length
    if size > MAX_SIGNATURE:
        raise FormatError(f"rpm signature header: absurd size ({size} bytes)")
    return LEAD_SIZE + size + (-size % 8)


class SigMD5:
    """SIGMD5 computed incrementally from a whole rpm file fed in order, any chunking: the MD5
    of everything after the (8-byte padded) signature header. This is the one place that
    rule lives: the reader and the Koji download check (payloadhash) both use it."""

    def __init__(self) -> None:
        self._head: bytearray | None = bytearray()  # until the main header's offset is known
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self._head is None:
            self._md5.update(chunk)
            return
        self._head += chunk
        start = signature_length(bytes(self._head[: LEAD_SIZE + 16]))
        if start is None or len(self._head) < start:
            return
        self._md5.update(memoryview(self._head)[start:])
        self._head = None

    def hexdigest(self) -> str:
        if self._head is not None:
            raise TruncatedError("file ends inside the rpm lead or signature header")
        return self._md5.hexdigest()


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
    """A binary rpm read from a stream, positioned at its payload after construction.

    Construction reads the lead and both headers and verifies the main header against the
    signature's header digests before decoding any of its fields. ``members()`` streams the
    payload and verifies every payload digest at its end. ``budget`` (one per package) bounds
    the decompressed bytes and the member count.
    """

    def __init__(self, stream: BinaryIO, budget: Budget | None = None) -> None:
        self.budget = budget or Budget(Limits.from_settings())
        lead = read_exact(stream, LEAD_SIZE, "rpm lead")
        if lead[:4] != LEAD_MAGIC:
            raise FormatError(f"not an rpm: bad lead magic {lead[:4].hex()}")
        sig_blob = read_header_bytes(stream, "rpm signature header")
        if len(sig_blob) > MAX_SIGNATURE:
            raise FormatError(f"rpm signature header: absurd size ({len(sig_blob)} bytes)")
        self.signature = parse_header(sig_blob, "rpm signature header")
        read_exact(stream, -len(sig_blob) % 8, "rpm signature header padding")
        # Everything from here on is covered by SIGMD5: header and payload.
        self._sigmd5 = SigMD5()
        self._sigmd5.update(lead + sig_blob + bytes(-len(sig_blob) % 8))
        self._signature_end = self._sigmd5.size
        blob = read_header_bytes(stream, "rpm header")
        self._sigmd5.update(blob)
        self.digests: list[str] = []  # what was checked, in order ("SHA256HEADER", ...)
        self._verify_header(blob)
        self.header = h = parse_header(blob, "rpm header")
        self.name = self._required(NAME)
        self.version = self._required(VERSION)
        self.release = self._required(RELEASE)
        self.arch = h.string(ARCH) or ""
        epoch = h.integers(EPOCH)
        self.epoch: int | None = epoch[0] if epoch else None
        # What rpm itself goes by (headerIsSource): a binary package names its source rpm.
        # The lead's type field is covered by no digest, so it decides nothing.
        self.sourcerpm = h.string(SOURCERPM) or ""
        if not self.sourcerpm:
            raise UnsupportedPackage("source rpm")
        self.payload_format = h.string(PAYLOADFORMAT) or "cpio"
        self.payload_compressor = h.string(PAYLOADCOMPRESSOR) or "gzip"
        self._payload_digests = self._expected_payload_digests()
        compressed = [h for _name, h, _x, is_alt in self._payload_digests if not is_alt]
        self._stream = io.BufferedReader(DigestReader(stream, self._sigmd5, *compressed), CHUNK)

    @property
    def sigmd5(self) -> str:
        """SIGMD5 as the signature states it (hex; "" when absent or malformed)."""
        value = self.signature.get(SIG_MD5)
        return value.hex() if isinstance(value, bytes) and len(value) == 16 else ""

    @property
    def header_verified(self) -> bool:
        return any(d.endswith("HEADER") or d == "SIGMD5" for d in self.digests)

    @property
    def verified(self) -> bool:
        """Both the header and the payload are covered by a digest the package carries (known
        once ``members()`` has run to its end)."""
        payload = {"SIGMD5", "PAYLOADDIGEST", "PAYLOADDIGESTALT", "PAYLOADSHA512",
                   "PAYLOADSHA512ALT", "PAYLOADSHA3_256", "PAYLOADSHA3_256ALT"}
        return self.header_verified and bool(payload & set(self.digests))

    def _verify_header(self, blob: bytes) -> None:
        sig = self.signature
        for tag, algo in HEADER_DIGESTS.items():
            if tag not in sig:
                continue
            expected = _hex_digest(sig, tag, algo, "rpm signature header")
            got = hashlib.new(algo, blob).hexdigest()
            if got != expected:
                raise IntegrityError(
                    f"rpm header corrupt: its {algo.upper()} {got} does not match the "
                    f"signature's {_TAG_NAMES[tag]} {expected}")
            self.digests.append(_TAG_NAMES[tag])
        if self.sigmd5 or SIG_MD5 in sig:
            _hex_digest(sig, SIG_MD5, "md5", "rpm signature header")  # well-formed or fail

    def _expected_payload_digests(self) -> list[tuple[str, _Hash, str, bool]]:
        """(name, running hash, expected hex, over the uncompressed payload?) per digest."""
        h = self.header
        out: list[tuple[str, _Hash, str, bool]] = []
        algo_number = h.integers(PAYLOADDIGESTALGO)
        sha256_algo = HASH_ALGOS.get(algo_number[0] if algo_number else 8)
        for tag, algo, alt in ((PAYLOADDIGEST, sha256_algo, False),
                               (PAYLOADDIGESTALT, sha256_algo, True),
                               (PAYLOADSHA512, "sha512", False),
                               (PAYLOADSHA512ALT, "sha512", True),
                               (PAYLOADSHA3_256, "sha3_256", False),
                               (PAYLOADSHA3_256ALT, "sha3_256", True)):
            if tag not in h:
                continue
            if algo is None:
                raise FormatError(f"rpm header: unknown payload digest algorithm {algo_number}")
            out.append((_TAG_NAMES[tag], hashlib.new(algo), _hex_digest(h, tag, algo,
                                                                       "rpm header"), alt))
        return out

    def _file_digests(self) -> tuple[str, dict[str, str]]:
        """(hashlib algorithm, digest by install path) from FILEDIGESTS ({} without it)."""
        h = self.header
        digests = h.strings(FILEDIGESTS)
        number = h.integers(FILEDIGESTALGO)
        algo = HASH_ALGOS.get(number[0] if number else 1)  # no algorithm tag: MD5 (rpm < 4.6)
        if not digests or algo is None:
            return "", {}
        paths = self._paths()
        if len(paths) != len(digests):
            raise FormatError(f"rpm header: {len(digests)} file digests for {len(paths)} files")
        return algo, {p: d.lower() for p, d in zip(paths, digests, strict=True) if d}

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
        """The payload's cpio members; at the end, the payload is checked to its last byte and
        against every digest the package carries (IntegrityError on a mismatch)."""
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
        if kind == "none":
            self._share_alt_hashes()
        compressed = [h for _n, h, _x, is_alt in self._payload_digests if not is_alt]
        uncompressed = [h for _n, h, _x, is_alt in self._payload_digests
                        if is_alt and h not in compressed]  # shared ones run already
        # Counting (and ALT-hashing) the decompressed bytes bounds a decompression bomb.
        counted = io.BufferedReader(DigestReader(payload, *uncompressed, budget=self.budget),
                                    CHUNK)
        # FILEDIGESTS cost a hash of every ELF member; they add something only where no
        # digest covers the uncompressed payload already (rpm < 4.16 with a compressed
        # payload, or a package whose payload digests are gone).
        covered = any(is_alt for _n, _h, _x, is_alt in self._payload_digests) or (
            kind == "none" and bool(compressed))
        algo, file_digests = ("", {}) if covered else self._file_digests()
        listed = set(self._paths())
        try:
            for member in iter_cpio(counted, self.stripped_table, self.budget):
                path = _header_path(member.name)
                if listed and path not in listed:  # rpm refuses such a payload too
                    raise IntegrityError(f"rpm payload corrupt: member {member.name!r} is not "
                                         "in the header's file list")
                expected = file_digests.get(path)
                check = None
                if expected and member.is_regular:
                    check = member.data = ElfDigestCheck(
                        member.data, algo, expected,
                        f"rpm payload corrupt: {path} does not match its FILEDIGESTS entry")
                yield member
                if check is not None and check.finish() and "FILEDIGESTS" not in self.digests:
                    self.digests.append("FILEDIGESTS")
            drain(counted)  # the compressed stream's own end and checksum; ALT sees it all
        finally:
            if payload is not source:
                payload.close()
        drain(self._stream)
        self._check_payload()

    def _share_alt_hashes(self) -> None:
        """Uncompressed payload: an ALT digest covers the very bytes its compressed twin does,
        so the one running hash of that algorithm serves both (one pass, not two)."""
        by_algo = {h.name: h for _n, h, _x, alt in self._payload_digests if not alt}
        self._payload_digests = [
            (name, by_algo.get(h.name, h) if alt else h, expected, alt)
            for name, h, expected, alt in self._payload_digests
        ]

    def _check_payload(self) -> None:
        for name, running, expected, _alt in self._payload_digests:
            got = running.hexdigest()
            if got != expected:
                raise IntegrityError(f"rpm payload corrupt: {name} {got} does not match the "
                                     f"header's {expected}")
            self.digests.append(name)
        if self.sigmd5:
            got = self._sigmd5.hexdigest()
            if got != self.sigmd5:
                raise IntegrityError(f"rpm corrupt: MD5 of header and payload {got} does not "
                                     f"match the signature's SIGMD5 {self.sigmd5}")
            self.digests.append("SIGMD5")
        stated = self.signature.integers(SIG_LONGSIZE) or self.signature.integers(SIG_SIZE)
        header_and_payload = self._sigmd5.size - self._signature_end
        if stated and stated[0] != header_and_payload:
            raise IntegrityError(f"rpm corrupt: header and payload are {header_and_payload} "
                                 f"bytes, the signature's SIZE says {stated[0]}")


class _Hash(Protocol):
    @property
    def name(self) -> str: ...
    def update(self, data: bytes | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


_TAG_NAMES = {
    SIG_SHA1HEADER: "SHA1HEADER", SIG_SHA256HEADER: "SHA256HEADER",
    SIG_SHA3_256HEADER: "SHA3_256HEADER", SIG_MD5: "SIGMD5", PAYLOADDIGEST: "PAYLOADDIGEST",
    PAYLOADDIGESTALT: "PAYLOADDIGESTALT", PAYLOADSHA512: "PAYLOADSHA512",
    PAYLOADSHA512ALT: "PAYLOADSHA512ALT", PAYLOADSHA3_256: "PAYLOADSHA3_256",
    PAYLOADSHA3_256ALT: "PAYLOADSHA3_256ALT",
}


def _hex_digest(h: RpmHeader, tag: int, algo: str, what: str) -> str:
    """A digest tag's value as lower-case hex, checked for the algorithm's length."""
    value = h.get(tag)
    if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]  # v6 writes PAYLOADSHA256 as a one-element string array
    if isinstance(value, bytes):  # SIGMD5 is binary
        value = value.hex()
    want = hashlib.new(algo).digest_size * 2
    if not isinstance(value, str) or len(value) != want or not _is_hex(value):
        raise IntegrityError(f"{what}: {_TAG_NAMES.get(tag, tag)} is not a {algo} digest "
                          f"({value!r:.80})")
    return value.lower()


def _header_path(name: str) -> str:
    """A cpio member name as the header lists it: "./usr/bin/x" -> "/usr/bin/x"."""
    if name.startswith("./"):
        return name[1:]
    return name if name.startswith("/") else "/" + name


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def iter_rpm_members(stream: BinaryIO, budget: Budget | None = None) -> Iterator[CpioMember]:
    """The cpio members of the rpm in ``stream`` (headers read and checked first)."""
    return RpmReader(stream, budget).members()
