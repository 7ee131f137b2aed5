"""Debian package reader: the ar container, control.tar's ``control`` file, data.tar's members.

    deb = DebReader(stream)
    for member in deb.members(): ...   # data.tar members, streamed (darkcore.tar)
    deb.control                        # set once control.tar has been read (before data.tar
                                       # in every real package; any order is accepted)

A .deb is an ar archive: "!<arch>\\n", then per member a 60-byte header (name 16, mtime 12,
uid 6, gid 6, mode 8, size 10, "`\\n") and the data padded to an even length. Names may end in
"/" (GNU), be "/N" references into a "//" table (GNU long names) or "#1/N" with the name
prepended to the data (BSD). Members: debian-binary, control.tar[.gz|.xz|.zst],
data.tar[.gz|.xz|.zst|.bz2|.lzma]. Nothing is extracted to disk.

Integrity: control.tar's ``md5sums`` (dh_md5sums: "<md5>  <path>" per installed file) is read
before data.tar, which dpkg requires to come after it, and every ELF member of data.tar is
checked against it as it is read (IntegrityError on a mismatch). ``verified`` is False when
the package lists no md5sums, when data.tar came first, or when an ELF member is not listed.
A member name or a debian-binary that is not even well-formed is damage (FormatError), never
"unsupported": no digest covers them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from darkcore.compression import (
    CHUNK,
    BoundedReader,
    DigestReader,
    ElfDigestCheck,
    drain,
    open_decompressed,
    read_exact,
    sniff,
    sniff_compression,
)
from darkcore.errors import FormatError, TruncatedError, UnsupportedPackage
from darkcore.limits import Budget, Limits
from darkcore.tar import iter_tar

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
SUFFIXES = {"": "none", ".gz": "gzip", ".xz": "xz", ".zst": "zstd", ".bz2": "bzip2",
            ".lzma": "lzma"}
MAX_CONTROL = 64 << 20  # control.tar holds scripts and md5sums; more is not a control archive
MAX_CONTROL_FILE = 1 << 20
MAX_MD5SUMS = 64 << 20  # ~50 bytes a file: a million files
_VERSION = re.compile(rb"(\d+)\.\d+\n?")
_SUFFIX = re.compile(r"(\.[a-z0-9]{1,8})?")  # what a compressor's suffix looks like
_MD5SUM = re.compile(r"([0-9a-fA-F]{32}) [ *]?(.+)")


@dataclass(frozen=True, slots=True)
class DebControl:
    package: str
    version: str  # as written, with any epoch: "1:2.3-4"
    architecture: str
    source: str  # the source package name (Package when there is no Source field)
    source_version: str  # "" unless Source names one: "src (ver)"
    build_ids: tuple[str, ...] = ()  # -dbgsym packages list their ids
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class DebMember:
    name: str  # as stored in the tar: "./usr/bin/foo" (not normalised)
    size: int
    type: str  # file, hardlink, symlink, dir, other
    linkname: str = ""  # hardlink/symlink target
    data: BoundedReader | None = None  # files: read as much as wanted, the rest is skipped
    mtime: int = 0  # seconds since the epoch

    @property
    def is_regular(self) -> bool:
        return self.type == "file"


def parse_control(text: str) -> dict[str, str]:
    """The first paragraph of a deb822 control file (continuation lines joined with "\\n")."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t":
            if not last:
                raise FormatError(f"control file: continuation line before any field: {line!r}")
            fields[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise FormatError(f"control file: not a field: {line!r}")
        last = key.strip()
        fields[last] = value.strip()
    return fields


def control_from_fields(fields: dict[str, str]) -> DebControl:
    for required in ("Package", "Version", "Architecture"):
        if not fields.get(required):
            raise FormatError(f"control file: no {required} field")
    source, source_version = fields["Package"], ""
    if fields.get("Source"):
        name, _, rest = fields["Source"].partition("(")
        source = name.strip()
        source_version = rest.rstrip(") ").strip()
    return DebControl(
        package=fields["Package"],
        version=fields["Version"],
        architecture=fields["Architecture"],
        source=source,
        source_version=source_version,
        build_ids=tuple(fields.get("Build-Ids", "").lower().split()),
        fields=fields,
    )


def parse_md5sums(text: str) -> dict[str, str]:
    """md5sums -> {"/usr/bin/x": md5 hex}; a malformed line is damage."""
    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _MD5SUM.fullmatch(line)
        if not match:
            raise FormatError(f"deb md5sums line {number} is malformed: {line[:80]!r}")
        sums["/" + match.group(2).removeprefix("./").lstrip("/")] = match.group(1).lower()
    return sums


class DebReader:
    """A .deb read from a stream. ``budget`` (one per package) bounds the decompressed bytes
    of control.tar and data.tar together and their member count."""

    def __init__(self, stream: BinaryIO, budget: Budget | None = None) -> None:
        magic = read_exact(stream, len(AR_MAGIC), "deb ar header")
        if magic != AR_MAGIC:
            raise FormatError(f"not a deb: bad ar magic {magic!r}")
        self._stream = stream
        self.budget = budget or Budget(Limits.from_settings())
        self.control: DebControl | None = None
        self.md5sums: dict[str, str] | None = None  # None: control.tar has none (or not yet)
        self.data_compression = ""
        self.elf_checked = 0  # ELF members that matched md5sums
        self.elf_unlisted = 0  # ELF members md5sums does not list (or no md5sums to check)

    @property
    def verified(self) -> bool:
        """Every ELF member was checked against md5sums (known once members() has ended)."""
        return bool(self.md5sums) and not self.elf_unlisted

    def members(self) -> Iterator[DebMember]:
        """data.tar's members; at the end, the whole ar archive has been read and checked."""
        seen_data = False
        for name, content in self._ar_members():
            if name == "debian-binary":
                version = content.read(16)
                match = _VERSION.fullmatch(version)
                if not match:
                    raise FormatError(f"deb debian-binary is corrupt: {version!r}")
                if match.group(1) != b"2":
                    raise UnsupportedPackage(f"deb format version {version.strip()!r}")
            elif name.startswith("control.tar"):
                self.control = self._read_control(name, content)
            elif name.startswith("data.tar"):
                if seen_data:
                    raise FormatError("deb has two data.tar members")
                seen_data = True
                yield from self._data_members(name, content)
            content.skip()
        if self.control is None:
            raise FormatError("deb has no control.tar member")
        if not seen_data:
            raise FormatError("deb has no data.tar member")

    def _ar_members(self) -> Iterator[tuple[str, BoundedReader]]:
        long_names = b""
        stream = self._stream
        while True:
            header = stream.read(AR_HEADER)
            if not header:
                return
            if len(header) < AR_HEADER:
                raise TruncatedError("deb ar member header truncated")
            if header[58:60] != b"`\n":
                raise FormatError(f"deb ar member header is corrupt: {header[:16]!r}")
            raw_name = header[:16].rstrip(b" ")
            try:
                size = int(header[48:58])
            except ValueError:
                raise FormatError(f"deb ar member {raw_name!r}: bad size field") from None
            if size < 0:
                raise FormatError(f"deb ar member {raw_name!r}: negative size")
            label = raw_name.decode(errors="replace")
            content = BoundedReader(stream, size, f"deb member {label!r}")
            if raw_name.startswith(b"#1/"):  # BSD: the name is the start of the data
                length = _ar_number(raw_name[3:], raw_name)
                if length > size:
                    raise FormatError(f"deb ar member {raw_name!r}: name longer than the member")
                raw_name = content.read(length).rstrip(b"\0")
            elif raw_name == b"//":  # GNU long-name table
                long_names = content.read(min(size, 1 << 20))
            elif raw_name.startswith(b"/") and raw_name[1:].isdigit():
                start = int(raw_name[1:])
                end = long_names.find(b"/\n", start)
                raw_name = long_names[start : end if end >= 0 else None]
            name = raw_name.decode("utf-8", "replace").rstrip("/")
            if name and raw_name not in (b"/", b"//"):  # "/": GNU symbol table
                yield name, content
            content.skip()
            if size % 2:
                stream.read(1)  # padding (lenient: some writers omit it after the last member)

    def _read_control(self, name: str, content: BoundedReader) -> DebControl:
        if content.size > MAX_CONTROL:
            raise FormatError(f"deb {name} is implausibly large ({content.size} bytes)")
        kind, source = _compression_of(name, "control.tar", content)
        control = None
        # Read the whole archive, not just up to "control": its end-of-stream checks run last.
        for member in _iter_tar(source, kind, name, self.budget):
            base = member.name.removeprefix("./")
            if base == "control" and member.data is not None:
                if member.size > MAX_CONTROL_FILE:
                    raise FormatError(f"deb control file is implausibly large ({member.size})")
                text = member.data.read().decode("utf-8", "replace")
                control = control_from_fields(parse_control(text))
            elif base == "md5sums" and member.data is not None:
                if member.size > MAX_MD5SUMS:
                    raise FormatError(f"deb md5sums is implausibly large ({member.size})")
                self.md5sums = parse_md5sums(member.data.read().decode("utf-8",
                                                                       "surrogateescape"))
        if control is None:
            raise FormatError(f"deb {name} has no control file")
        return control

    def _data_members(self, name: str, content: BoundedReader) -> Iterator[DebMember]:
        self.data_compression, source = _compression_of(name, "data.tar", content)
        sums = self.md5sums or {}
        for member in _iter_tar(source, self.data_compression, name, self.budget):
            check = None
            if self.md5sums is not None and member.is_regular and member.data is not None:
                path = "/" + member.name.removeprefix("./").lstrip("/")
                check = member.data = ElfDigestCheck(
                    member.data, "md5", sums.get(path),
                    f"deb corrupt: {path} does not match its md5sums entry")
            yield member
            if check is not None:
                result = check.finish()
                if result:
                    self.elf_checked += 1
                elif result is False:
                    self.elf_unlisted += 1


def _compression_of(name: str, stem: str, content: BoundedReader) -> tuple[str, BinaryIO]:
    """The member's compression, by its name, which its first bytes must confirm (no digest
    covers the name, so a damaged one is a FormatError, not an unknown compressor); returns
    it and a stream that still starts with the bytes looked at."""
    suffix = name[len(stem) :]
    head, stream = sniff(cast(BinaryIO, content), 16)
    found = sniff_compression(head)
    compressed = {"gzip", "bzip2", "xz", "zstd"}
    if suffix not in SUFFIXES:
        if not _SUFFIX.fullmatch(suffix):
            raise FormatError(f"deb member name {name!r} is corrupt")
        if found in compressed:  # ".xy" holding xz data: a damaged name, not a new format
            raise FormatError(f"deb member name {name!r} is corrupt: it holds {found} data")
        raise UnsupportedPackage(f"deb member {name!r}: unknown compression {suffix!r}")
    kind = SUFFIXES[suffix]
    # .lzma has no magic (the sniffer knows only the usual header); a tar starts with a name.
    if head and ((kind in compressed and found != kind) or (kind == "none" and found in
                                                             compressed)):
        raise FormatError(f"deb member {name!r} does not hold {kind} data "
                          f"(it starts with {head[:6]!r})")
    return kind, stream


def _iter_tar(source: BinaryIO, kind: str, what: str, budget: Budget
              ) -> Iterator[DebMember]:
    """Stream a (compressed) tar: each member in turn, then the rest drained. Decompressed
    bytes and members are charged to ``budget``."""
    payload = open_decompressed(source, kind)
    counted = cast(BinaryIO, io.BufferedReader(DigestReader(payload, budget=budget), CHUNK))
    try:
        for entry in iter_tar(counted, what, budget):
            yield DebMember(entry.name, entry.size, entry.type, entry.linkname, entry.data,
                            entry.mtime)
        drain(counted)
    finally:
        if payload is not source:
            payload.close()


def _ar_number(field: bytes, name: bytes) -> int:
    try:
        return int(field)
    except ValueError:
        raise FormatError(f"deb ar member {name!r}: bad name length") from None
