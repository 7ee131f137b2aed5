"""A strict struct-level ELF reader: the header, the notes, the GNU build-id and the FDO package
note. Nothing else of the file is looked at.

Where the notes are searched, in the order binutils' ``readelf -n`` uses (our oracle):

1. ``SHT_NOTE`` sections. Relocatable objects (``.o``, kernel modules) have no program headers,
   and ``.debug`` files made by eu-strip / ``objcopy --only-keep-debug`` keep the *original*
   program headers, whose PT_NOTE offsets point at whatever now lives there. When a file has
   section headers, they are authoritative.
2. ``PT_NOTE`` segments, only when the file has no note section at all (section headers
   stripped, some hand-made files).

Strictness: a note that does not fit (descsz or namesz running past its section, an id of
length 0 or more than 64 bytes) never yields a build-id; pyelftools 0.33 returns bytes past
the section end for an overlong descsz, this reader stops at the first bad note instead.
Broken *headers* (truncated ELF header, header tables or note sections past the end of the
file, impossible entry sizes) raise :class:`FormatError` / :class:`TruncatedError`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from os import PathLike
from typing import BinaryIO

from darkcore import buildid
from darkcore.errors import FormatError, TruncatedError

# e_type values (ELF gABI)
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class ElfInfo:
    """What one ELF file says about itself."""

    build_id: bytes | None  # NT_GNU_BUILD_ID descriptor; None when absent or malformed
    elf_class: int  # 32 or 64
    big_endian: bool
    elf_type: int  # e_type
    machine: int  # e_machine
    package_note: str | None = None  # FDO .note.package JSON text, when present and valid
    # A GNU build-id note whose length breaks darkcore.buildid's rule (so build_id is None):
    # kept so that a caller can say why the file has no usable id.
    rejected_build_id: bytes | None = None

__all__ = [
    "HEADER_SIZE", "SHN_XINDEX", "BadElfHeaderError", "BadNoteError", "ElfHeader", "ElfInfo",
    "NotElfError", "Segment", "TruncatedElfError", "build_id_in", "debug_alt_link",
    "elf_type_name", "iter_notes", "machine_name", "parse_header", "parse_segments",
    "program_header_bytes", "read_elf", "read_elf_bytes", "read_elf_path", "read_section",
]

ELF_MAGIC = b"\x7fELF"
PT_LOAD, PT_NOTE = 1, 4
SHT_NOTE, SHT_NOBITS = 7, 8
NT_GNU_BUILD_ID = 3
NT_FDO_PACKAGING_METADATA = 0xCAFE1A7E
# readelf and eu-readelf also take an owner written without its NUL (namesz 3): so do we.
GNU_OWNERS, FDO_OWNERS = (b"GNU\0", b"GNU"), (b"FDO\0", b"FDO")

# A JSON package note is a few hundred bytes; a bigger one is not what systemd specifies.
MAX_PACKAGE_NOTE = 64 * 1024
# ELF header layout after e_ident, per class: (struct code, header size, phentsize, shentsize).
_HEADER = {32: ("HHIIIIIHHHHHH", 52, 32, 40), 64: ("HHIQQQIHHHHHH", 64, 56, 64)}
# Section header: sh_type, sh_offset, sh_size, sh_addralign (skipping the other fields).
_SHDR = {32: ("I8xII8xI", 4), 64: ("I16xQQ8xQ", 4)}  # (code from sh_type on, offset of sh_type)
# Program header: p_type, p_offset, p_filesz, p_align.
_PHDR = {32: ("II8xI8xI", 0), 64: ("I4xQ16xQ8xQ", 0)}
# Extended section numbering (e_shnum == 0): the real count is section 0's sh_size.
MAX_SECTIONS = 1 << 20


class BadElfHeaderError(FormatError):
    """The ELF header or a header table is impossible (bad class, entry size, count)."""


class TruncatedElfError(TruncatedError):
    """The file ends before a header, header table or note section it declares."""


class BadNoteError(FormatError):
    """A note entry does not fit in its section or segment (used by :func:`iter_notes`)."""


Reader = Callable[[int, int], bytes | memoryview]


def read_elf_bytes(data: bytes | memoryview) -> ElfInfo | None:
    """The fast path: the whole file is in memory. None when ``data`` is not ELF."""
    view = memoryview(data)
    if bytes(view[:4]) != ELF_MAGIC:
        return None
    size = len(view)

    def read(offset: int, length: int) -> memoryview:
        if offset < 0 or length < 0 or offset + length > size:
            raise TruncatedElfError(
                f"ELF data at {offset}+{length} runs past the end of the file ({size} bytes)")
        return view[offset:offset + length]

    return _read(read, size)


def read_elf(f: BinaryIO) -> ElfInfo | None:
    """Read from a seekable stream, starting at its current position; only the header tables
    and the note sections are read. None when the stream does not start with the ELF magic."""
    base = f.tell()
    if f.read(4) != ELF_MAGIC:
        return None
    size = f.seek(0, 2) - base

    def read(offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > size:
            raise TruncatedElfError(
                f"ELF data at {offset}+{length} runs past the end of the file ({size} bytes)")
        f.seek(base + offset)
        data = f.read(length)
        if len(data) != length:
            raise TruncatedElfError(f"short read at {offset}: {len(data)} of {length} bytes")
        return data

    return _read(read, size)


def read_elf_path(path: str | PathLike[str]) -> ElfInfo | None:
    with open(path, "rb") as f:
        return read_elf(f)


@dataclass(frozen=True, slots=True)
class ElfHeader:
    """The fields of the ELF header this package uses."""

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
    shstrndx: int = 0

    @property
    def order(self) -> str:
        """struct byte-order prefix."""
        return ">" if self.big_endian else "<"

    @property
    def word(self) -> str:
        """struct code of an address-sized word."""
        return "Q" if self.elf_class == 64 else "I"

    @property
    def size(self) -> int:
        return _HEADER[self.elf_class][1]


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header."""

    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


class NotElfError(FormatError):
    """The bytes do not start with the ELF magic."""


HEADER_SIZE = 64  # the 64-bit header; a 32-bit one (52 bytes) fits in it


def parse_header(data: bytes | memoryview) -> ElfHeader:
    """The ELF header at the start of ``data`` (the first HEADER_SIZE bytes, or all there are)."""
    size = len(data)
    if bytes(data[:4]) != ELF_MAGIC:
        raise NotElfError("not an ELF file (no \\x7fELF magic)")
    if size < 16:
        raise TruncatedElfError(f"ELF identification cut short ({size} bytes)")
    elf_class = {1: 32, 2: 64}.get(data[4])
    if elf_class is None:
        raise BadElfHeaderError(f"bad ELF class byte {data[4]}")
    if data[5] not in (1, 2):
        raise BadElfHeaderError(f"bad ELF data encoding byte {data[5]}")
    order = ">" if data[5] == 2 else "<"
    code, header_size, _ph_min, _sh_min = _HEADER[elf_class]
    if size < header_size:
        raise TruncatedElfError(f"ELF header cut short ({size} of {header_size} bytes)")
    (e_type, machine, _version, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
     shentsize, shnum, shstrndx) = struct.unpack_from(order + code, data, 16)
    return ElfHeader(elf_class, order == ">", e_type, machine, phoff, phentsize, phnum,
                     shoff, shentsize, shnum, shstrndx)


def program_header_bytes(h: ElfHeader) -> int:
    """Size of the program header table; BadElfHeaderError for an impossible one."""
    minimum = _HEADER[h.elf_class][2]
    if h.phnum and h.phentsize < minimum:
        raise BadElfHeaderError(f"program header entry size {h.phentsize} is below {minimum}")
    return h.phnum * h.phentsize


def parse_segments(h: ElfHeader, table: bytes | memoryview) -> list[Segment]:
    """The program headers in ``table`` (``program_header_bytes(h)`` bytes)."""
    need = program_header_bytes(h)
    if len(table) < need:
        raise TruncatedElfError(f"program header table cut short ({len(table)} of {need} bytes)")
    code = h.order + ("IIQQQQQQ" if h.elf_class == 64 else "IIIIIIII")
    out = []
    for at in range(0, need, h.phentsize):
        if h.elf_class == 64:
            p_type, _flags, offset, vaddr, _paddr, filesz, memsz, align = struct.unpack_from(
                code, table, at)
        else:
            p_type, offset, vaddr, _paddr, filesz, memsz, _flags, align = struct.unpack_from(
                code, table, at)
        out.append(Segment(p_type, offset, vaddr, filesz, memsz, align))
    return out


SHN_XINDEX = 0xFFFF
_SECTION = {32: "IIIIIIIIII", 64: "IIQQQQIIQQ"}  # name type flags addr offset size link info...


def read_section(f: BinaryIO, name: str) -> bytes | None:
    """The contents of the section called ``name`` in the ELF file ``f`` (from its start);
    None when there is no such section or it has no contents in the file (SHT_NOBITS, as
    .debug files have for the code). debuginfod's /section/NAME is this."""
    f.seek(0)
    head = f.read(HEADER_SIZE)
    h = parse_header(head)
    size = f.seek(0, 2)

    def read(offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > size:
            raise TruncatedElfError(
                f"ELF data at {offset}+{length} runs past the end of the file ({size} bytes)")
        f.seek(offset)
        return f.read(length)

    if h.shoff == 0:
        return None
    minimum = _HEADER[h.elf_class][3]
    if h.shentsize < minimum:
        raise BadElfHeaderError(f"section header entry size {h.shentsize} is below {minimum}")
    unpack = struct.Struct(h.order + _SECTION[h.elf_class]).unpack_from
    shnum, strndx = h.shnum, h.shstrndx
    if shnum == 0 or strndx == SHN_XINDEX:  # extended numbering: section 0 holds the values
        first = unpack(read(h.shoff, h.shentsize), 0)
        shnum = shnum or first[5]
        strndx = first[6] if strndx == SHN_XINDEX else strndx
    if shnum > MAX_SECTIONS or strndx >= shnum:
        raise BadElfHeaderError(f"implausible section count {shnum} or name index {strndx}")
    table = read(h.shoff, shnum * h.shentsize)
    sections = [unpack(table, i * h.shentsize) for i in range(shnum)]
    names_sh = sections[strndx]
    names = read(names_sh[4], names_sh[5])
    wanted = name.encode()
    for sh_name, sh_type, _flags, _addr, offset, length, *_rest in sections:
        end = names.find(b"\0", sh_name)
        if names[sh_name:end if end >= 0 else len(names)] == wanted:
            return None if sh_type == SHT_NOBITS else read(offset, length)
    return None


def debug_alt_link(f: BinaryIO) -> tuple[str, bytes] | None:
    """(file name, build-id) of the dwz file a debug file refers to (.gnu_debugaltlink: the
    name, NUL, the build-id bytes); None when it refers to none."""
    data = read_section(f, ".gnu_debugaltlink")
    if not data or b"\0" not in data:
        return None
    name, _, raw = data.partition(b"\0")
    if not buildid.valid_length(len(raw)):
        return None
    return name.decode("utf-8", "backslashreplace"), raw


def build_id_in(data: bytes | memoryview, big_endian: bool, align: int = 4) -> bytes | None:
    """The GNU build-id among the notes in ``data`` (a note section or segment), when it
    follows the API's rule (darkcore.buildid); None otherwise. A bad entry ends the search."""
    try:
        for owner, ntype, desc in iter_notes(data, big_endian, 8 if align == 8 else 4):
            if ntype == NT_GNU_BUILD_ID and owner in GNU_OWNERS:
                return bytes(desc) if buildid.valid_length(len(desc)) else None
    except BadNoteError:
        pass
    return None


def _read(read: Reader, size: int) -> ElfInfo:
    if size < 16:
        raise TruncatedElfError(f"ELF identification cut short ({size} bytes)")
    h = parse_header(read(0, min(size, HEADER_SIZE)))
    order, elf_class = h.order, h.elf_class
    _code, _header_size, ph_min, sh_min = _HEADER[elf_class]
    e_type, machine = h.elf_type, h.machine

    regions = _note_sections(read, order, elf_class, h.shoff, h.shentsize, h.shnum, sh_min)
    if regions is None:  # no note section: fall back to the PT_NOTE segments
        regions = _note_segments(read, order, elf_class, h.phoff, h.phentsize, h.phnum, ph_min)
    build_id: bytes | None = None
    rejected: bytes | None = None
    package_note: str | None = None
    for offset, length, align in regions:
        try:
            for owner, ntype, desc in iter_notes(read(offset, length), order == ">", align):
                if ntype == NT_GNU_BUILD_ID and owner in GNU_OWNERS and build_id is None:
                    if buildid.valid_length(len(desc)):  # the API's rule, nothing else
                        build_id = bytes(desc)
                    elif rejected is None:
                        rejected = bytes(desc)
                elif ntype == NT_FDO_PACKAGING_METADATA and owner in FDO_OWNERS:
                    package_note = package_note or _package_json(desc)
        except BadNoteError:
            pass  # a bad entry ends its section; the notes before it stay valid
    return ElfInfo(build_id, elf_class, order == ">", e_type, machine, package_note,
                   None if build_id else rejected)


def _table(read: Reader, offset: int, entsize: int, count: int, minimum: int,
           what: str) -> memoryview:
    if entsize < minimum:
        raise BadElfHeaderError(f"{what} entry size {entsize} is below {minimum}")
    return memoryview(read(offset, entsize * count))


def _note_sections(read: Reader, order: str, elf_class: int, shoff: int, shentsize: int,
                   shnum: int, minimum: int) -> list[tuple[int, int, int]] | None:
    """(offset, size, align) of every SHT_NOTE section with contents; None when the file has
    no note section (so that the caller tries the segments)."""
    if shoff == 0:
        return None
    code, type_at = _SHDR[elf_class]
    unpack = struct.Struct(order + code).unpack_from
    if shnum == 0:  # extended numbering: the count is in section 0's sh_size
        shnum = unpack(_table(read, shoff, shentsize, 1, minimum, "section header"), type_at)[2]
        if shnum > MAX_SECTIONS:
            raise BadElfHeaderError(f"implausible section count {shnum}")
    table = bytes(_table(read, shoff, shentsize, shnum, minimum, "section header"))
    # Let bytes.find (C speed) look for sh_type == SHT_NOTE instead of a loop over every entry;
    # a hit that is not at an sh_type position (an sh_link of 7, say) is passed over.
    pattern = struct.pack(order + "I", SHT_NOTE)
    found: list[tuple[int, int, int]] = []
    at = table.find(pattern, type_at)
    while at >= 0:
        if (at - type_at) % shentsize == 0:  # NOBITS sections of a .debug file never match
            _, offset, length, align = unpack(table, at)
            if length:
                found.append((offset, length, 8 if align == 8 else 4))
        at = table.find(pattern, at + 1)
    return found or None


def _note_segments(read: Reader, order: str, elf_class: int, phoff: int, phentsize: int,
                   phnum: int, minimum: int) -> list[tuple[int, int, int]]:
    if phoff == 0 or phnum == 0:
        return []
    code, _ = _PHDR[elf_class]
    unpack = struct.Struct(order + code).unpack_from
    table = _table(read, phoff, phentsize, phnum, minimum, "program header")
    found: list[tuple[int, int, int]] = []
    for at in range(0, phnum * phentsize, phentsize):
        p_type, offset, length, align = unpack(table, at)
        if p_type == PT_NOTE and length:
            found.append((offset, length, 8 if align == 8 else 4))
    return found


def iter_notes(data: bytes | memoryview, big_endian: bool = False,
               align: int = 4) -> Iterator[tuple[bytes, int, memoryview]]:
    """(owner with its NUL, type, descriptor) of each note in one section or segment.

    The descriptor starts at the note start + 12 + namesz rounded up to ``align`` (4 or 8),
    the next note at that + descsz rounded up again — the gABI layout that readelf uses.
    Raises BadNoteError at the first entry that does not fit.
    """
    view = memoryview(data)
    unpack = struct.Struct((">" if big_endian else "<") + "III").unpack_from
    mask = align - 1
    end, at = len(view), 0
    while at + 12 <= end:
        namesz, descsz, ntype = unpack(view, at)
        desc_at = at + ((12 + namesz + mask) & ~mask)
        if desc_at + descsz > end:
            raise BadNoteError(
                f"note at {at} (namesz {namesz}, descsz {descsz}) runs past its {end} bytes")
        yield bytes(view[at + 12:at + 12 + namesz]), ntype, view[desc_at:desc_at + descsz]
        at = (desc_at + descsz + mask) & ~mask
    if at < end and any(view[at:end]):
        raise BadNoteError(f"{end - at} stray bytes after the last note")


def _package_json(desc: memoryview) -> str | None:
    """The FDO note's text when it is a NUL-terminated JSON object, else None."""
    raw = bytes(desc)
    end = raw.find(b"\0")
    if end < 0 or end > MAX_PACKAGE_NOTE or any(raw[end:]):
        return None  # no terminator, or bytes after it that are not padding
    try:
        text = raw[:end].decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return text if isinstance(value, dict) else None


# --- names for the web API (as distributions spell the architecture) ----------------------------

_ELF_TYPES = {0: "NONE", ET_REL: "REL", ET_EXEC: "EXEC", ET_DYN: "DYN", ET_CORE: "CORE"}
_MACHINES = {
    0: "none", 2: "sparc", 3: "i386", 4: "m68k", 8: "mips", 10: "mips", 15: "hppa",
    18: "sparc", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 41: "alpha", 42: "sh",
    43: "sparc64", 50: "ia64", 62: "x86_64", 83: "avr", 92: "openrisc", 94: "xtensa",
    164: "hexagon", 183: "aarch64", 243: "riscv", 247: "bpf", 258: "loongarch", 0x9026: "alpha",
}
# The same e_machine names a different architecture by class ...
_BY_CLASS = {(8, 64): "mips64", (22, 64): "s390x", (62, 32): "x32", (243, 64): "riscv64",
             (243, 32): "riscv32", (258, 64): "loongarch64"}
# ... and by byte order, as distributions spell them: (machine, class) when little-endian, when
# big-endian. The usual order of each machine keeps its plain name.
_LITTLE = {(21, 64): "ppc64le", (8, 32): "mipsel", (8, 64): "mips64el"}
_BIG = {(183, 64): "aarch64_be", (40, 32): "armeb"}


def machine_name(machine: int, elf_class: int = 0, big_endian: bool | None = None) -> str:
    """``x86_64``, ``aarch64``, ``i386``, ... ; the class and byte order refine it when known
    (``s390`` / ``s390x``, ``ppc64`` / ``ppc64le``, ``riscv64``). Unknown machines read
    ``EM_<number>``."""
    if big_endian is not None:
        by_order = (_BIG if big_endian else _LITTLE).get((machine, elf_class))
        if by_order is not None:
            return by_order
    return _BY_CLASS.get((machine, elf_class)) or _MACHINES.get(machine) or f"EM_{machine}"


def elf_type_name(elf_type: int) -> str:
    """``REL``, ``EXEC``, ``DYN``, ``CORE`` (``NONE`` for 0); others read ``ET_0x<hex>``."""
    return _ELF_TYPES.get(elf_type) or f"ET_{elf_type:#x}"
