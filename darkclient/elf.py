"""A small struct-level ELF reader: the header, program and section headers, notes, build-id.

Works on a stream (seek + read) so a multi-gigabyte file costs only the bytes it looks at, and
on byte strings taken out of a core's memory (``parse_*`` functions). Section headers are read
before PT_NOTE segments: relocatable objects have no program headers, and ``.debug`` files made
by eu-strip can carry stale program headers whose offsets point at nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from darkclient.errors import FormatError, NotElfError, TruncatedError

ELF_MAGIC = b"\x7fELF"
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
PT_LOAD, PT_NOTE = 1, 4
SHT_NOTE, SHT_NOBITS = 7, 8
NT_GNU_BUILD_ID = 3

ELF_TYPES = {0: "NONE", ET_REL: "REL", ET_EXEC: "EXEC", ET_DYN: "DYN", ET_CORE: "CORE"}
MACHINES = {
    2: "sparc", 3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm",
    42: "sh", 43: "sparc64", 50: "ia64", 62: "x86_64", 183: "aarch64", 243: "riscv",
    258: "loongarch",
}

# Header sizes are bounded so that a hostile file cannot make us read gigabytes of "headers".
MAX_HEADERS = 65536
MAX_NOTE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ElfHeader:
    elf_class: int  # 32 or 64
    big_endian: bool
    elf_type: int
    machine: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int

    @property
    def order(self) -> str:
        return ">" if self.big_endian else "<"

    @property
    def word(self) -> str:
        """struct code of an address-sized word."""
        return "Q" if self.elf_class == 64 else "I"


@dataclass(frozen=True, slots=True)
class Segment:
    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True, slots=True)
class Note:
    name: bytes  # owner without the trailing NUL, e.g. b"GNU", b"CORE"
    type: int
    desc: bytes


@dataclass(frozen=True, slots=True)
class ElfId:
    """What the client needs to know about one ELF file."""

    build_id: bytes | None
    elf_class: int
    big_endian: bool
    elf_type: int
    machine: int


HEADER_SIZE = 64  # the 64-bit header; a 32-bit one is 52 bytes and fits in these


def parse_header(data: bytes) -> ElfHeader:
    """The ELF header at the start of ``data`` (at least the first 64 bytes, or all there is)."""
    if len(data) < 4 or data[:4] != ELF_MAGIC:
        raise NotElfError("not an ELF file (no \\x7fELF magic)")
    if len(data) < 16:
        raise TruncatedError("truncated ELF header")
    elf_class = {1: 32, 2: 64}.get(data[4])
    if elf_class is None:
        raise FormatError(f"bad ELF class {data[4]}")
    if data[5] not in (1, 2):
        raise FormatError(f"bad ELF data encoding {data[5]}")
    o = ">" if data[5] == 2 else "<"
    if elf_class == 64:
        if len(data) < 64:
            raise TruncatedError("truncated ELF header")
        (e_type, machine, _v, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
         shentsize, shnum, _shstrndx) = struct.unpack_from(o + "HHIQQQIHHHHHH", data, 16)
    else:
        if len(data) < 52:
            raise TruncatedError("truncated ELF header")
        (e_type, machine, _v, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
         shentsize, shnum, _shstrndx) = struct.unpack_from(o + "HHIIIIIHHHHHH", data, 16)
    return ElfHeader(elf_class, o == ">", e_type, machine, phoff, phentsize, phnum,
                     shoff, shentsize, shnum)


def _check_table(count: int, entsize: int, minimum: int, what: str) -> None:
    if count > MAX_HEADERS:
        raise FormatError(f"implausible {what} count {count}")
    if count and entsize < minimum:
        raise FormatError(f"bad {what} entry size {entsize}")


def program_header_bytes(h: ElfHeader) -> int:
    _check_table(h.phnum, h.phentsize, 56 if h.elf_class == 64 else 32, "program header")
    return h.phnum * h.phentsize


def parse_segments(h: ElfHeader, table: bytes) -> list[Segment]:
    """Program headers from the raw table (``h.phnum`` entries of ``h.phentsize`` bytes)."""
    size = program_header_bytes(h)
    if len(table) < size:
        raise TruncatedError("truncated program header table")
    out = []
    for i in range(h.phnum):
        at = i * h.phentsize
        if h.elf_class == 64:
            p_type, _flags, off, vaddr, _paddr, filesz, memsz, align = struct.unpack_from(
                h.order + "IIQQQQQQ", table, at)
        else:
            p_type, off, vaddr, _paddr, filesz, memsz, _flags, align = struct.unpack_from(
                h.order + "IIIIIIII", table, at)
        out.append(Segment(p_type, off, vaddr, filesz, memsz, align))
    return out


def iter_notes(data: bytes, big_endian: bool, align: int = 4) -> Iterator[Note]:
    """Notes in a note section or segment. ``align`` is 8 for segments aligned to 8 (the
    name and descriptor are then padded to 8), otherwise 4. Stops at the first bad entry."""
    pad = 8 if align == 8 else 4
    o = ">" if big_endian else "<"
    at, end = 0, len(data)
    while at + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from(o + "III", data, at)
        name_at = at + 12
        desc_at = name_at + ((namesz + pad - 1) & -pad)
        nxt = desc_at + ((descsz + pad - 1) & -pad)
        if desc_at + descsz > end:
            return
        yield Note(data[name_at:name_at + namesz].rstrip(b"\0"), ntype,
                   data[desc_at:desc_at + descsz])
        at = nxt


def build_id_in(notes: Iterator[Note]) -> bytes | None:
    for note in notes:
        if note.name == b"GNU" and note.type == NT_GNU_BUILD_ID and note.desc:
            return note.desc
    return None


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _section_notes(f: BinaryIO, h: ElfHeader) -> Iterator[tuple[bytes, int]]:
    if not h.shoff or not h.shnum:
        return
    _check_table(h.shnum, h.shentsize, 64 if h.elf_class == 64 else 40, "section header")
    table = _read_at(f, h.shoff, h.shnum * h.shentsize)
    if len(table) < h.shnum * h.shentsize:
        raise TruncatedError("truncated section header table")
    for i in range(h.shnum):
        at = i * h.shentsize
        if h.elf_class == 64:
            _name, sh_type, _fl, _addr, off, size, _link, _info, align, _es = struct.unpack_from(
                h.order + "IIQQQQIIQQ", table, at)
        else:
            _name, sh_type, _fl, _addr, off, size, _link, _info, align, _es = struct.unpack_from(
                h.order + "IIIIIIIIII", table, at)
        if sh_type == SHT_NOTE and 0 < size <= MAX_NOTE_BYTES:
            yield _read_at(f, off, size), align


def read_elf(f: BinaryIO) -> ElfId:
    """Identify the ELF file in stream ``f`` and read its GNU build-id, if any."""
    h = parse_header(_read_at(f, 0, HEADER_SIZE))
    found: bytes | None = None
    for data, align in _section_notes(f, h):
        found = build_id_in(iter_notes(data, h.big_endian, align))
        if found:
            break
    if found is None and h.phnum:
        table = _read_at(f, h.phoff, program_header_bytes(h))
        for seg in parse_segments(h, table):
            if seg.type == PT_NOTE and 0 < seg.filesz <= MAX_NOTE_BYTES:
                data = _read_at(f, seg.offset, seg.filesz)
                found = build_id_in(iter_notes(data, h.big_endian, seg.align))
                if found:
                    break
    return ElfId(found, h.elf_class, h.big_endian, h.elf_type, h.machine)


def read_elf_path(path: str | Path) -> ElfId:
    with open(path, "rb") as f:
        return read_elf(f)


def read_elf_bytes(data: bytes) -> ElfId:
    import io

    return read_elf(io.BytesIO(data))
