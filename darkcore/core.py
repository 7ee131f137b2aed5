"""Build-ids of every module mapped in a core dump, read from the core's own memory.

The ``CORE`` note ``NT_FILE`` lists every file mapping {start, end, file offset in pages} and its
path. For a mapping of file offset 0 the kernel dumps the first page (coredump_filter bit 4,
"ELF headers", on by default), so the module's ELF header, program headers and build-id note
can be read back from the ``PT_LOAD`` segment that covers the mapping start: the same thing
``eu-unstrip -n --core`` does. The vDSO has no file; its address comes from ``AT_SYSINFO_EHDR``
in the ``NT_AUXV`` note. Cores without ``NT_FILE`` (kernels before 3.7) fall back to scanning
dumped segments for ELF headers.

The core is read as a stream: only headers, notes and a few pages are touched, so a core of
several gigabytes costs a few kilobytes of reads.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from darkcore.elf import (
    ET_CORE,
    ET_DYN,
    ET_EXEC,
    HEADER_SIZE,
    PT_LOAD,
    PT_NOTE,
    BadNoteError,
    ElfHeader,
    NotElfError,
    build_id_in,
    iter_notes,
    parse_header,
    parse_segments,
    program_header_bytes,
)
from darkcore.errors import FormatError, TruncatedError

NT_AUXV = 6
NT_FILE = 0x46494C45
AT_NULL, AT_SYSINFO_EHDR = 0, 33
PAGE = 4096
VDSO_NAME = "[vdso]"
CORE_OWNERS = (b"CORE\0", b"CORE")
MAX_NOTE_BYTES = 64 * 1024 * 1024  # a note segment bigger than this is not a real core's


class NotCoreError(FormatError):
    """An ELF file that is not a core dump."""


@dataclass(frozen=True, slots=True)
class Module:
    """One ELF module mapped in the process."""

    start: int  # address of the module's ELF header (the file-offset-0 mapping)
    end: int  # end of its highest PT_LOAD (start..end is what eu-unstrip prints)
    name: str  # path from NT_FILE, or "[vdso]"
    build_id: bytes | None
    problem: str = ""  # why build_id is None

    @property
    def build_id_hex(self) -> str:
        return self.build_id.hex() if self.build_id else ""


@dataclass(slots=True)
class Core:
    elf_class: int
    big_endian: bool
    machine: int
    modules: list[Module] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def build_ids(self) -> list[bytes]:
        """Distinct build-ids in mapping order."""
        seen: dict[bytes, None] = {}
        for m in self.modules:
            if m.build_id:
                seen.setdefault(m.build_id, None)
        return list(seen)


class _Memory:
    """The process memory as dumped in the core's PT_LOAD segments (file-backed part only)."""

    def __init__(self, f: BinaryIO, segments: list[tuple[int, int, int]], file_size: int) -> None:
        self._f = f
        self._segs = sorted(segments)  # (vaddr, offset, filesz)
        self._starts = [s[0] for s in self._segs]
        self._file_size = file_size

    def lost(self, addr: int) -> bool:
        """True when ``addr`` was dumped but lies past the end of a truncated core file."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return False
        vaddr, offset, filesz = self._segs[i]
        return addr < vaddr + filesz and offset + (addr - vaddr) >= self._file_size

    def read(self, addr: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``addr``; shorter when the dump stops (not dumped, or the
        core file is truncated). Does not cross segment boundaries: module headers never do."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return b""
        vaddr, offset, filesz = self._segs[i]
        if addr >= vaddr + filesz:
            return b""
        at = offset + (addr - vaddr)
        n = min(size, vaddr + filesz - addr, max(0, self._file_size - at))
        if n <= 0:
            return b""
        self._f.seek(at)
        return self._f.read(n)


def _exact(f: BinaryIO, offset: int, size: int, what: str) -> bytes:
    # Offsets are untrusted u64s: one past 2**63 makes seek() raise OverflowError (fuzzing).
    if offset + size > f.seek(0, os.SEEK_END):
        raise TruncatedError(f"truncated core: {what} ends past the end of the file")
    f.seek(offset)
    data = f.read(size)
    if len(data) < size:
        raise TruncatedError(f"truncated core: {what} ends past the end of the file")
    return data


def _parse_nt_file(desc: bytes, h: ElfHeader) -> list[tuple[int, int, int, str]]:
    """NT_FILE: count, page size, count × (start, end, file offset in pages), then the names."""
    w = 8 if h.elf_class == 64 else 4
    o, word = h.order, h.word
    if len(desc) < 2 * w:
        raise FormatError("corrupt NT_FILE note")
    count, page_size = struct.unpack_from(o + word * 2, desc, 0)
    table_end = 2 * w + count * 3 * w
    if count > len(desc) // (3 * w) or table_end > len(desc):
        raise FormatError("corrupt NT_FILE note (count past the end)")
    names = desc[table_end:].split(b"\0")
    out = []
    for i in range(count):
        start, end, pgoff = struct.unpack_from(o + word * 3, desc, 2 * w + i * 3 * w)
        name = names[i].decode("utf-8", "surrogateescape") if i < len(names) else ""
        out.append((start, end, pgoff * (page_size or PAGE), name))
    return out


def _auxv_value(desc: bytes, h: ElfHeader, key: int) -> int | None:
    w = 8 if h.elf_class == 64 else 4
    fmt = h.order + h.word * 2
    for at in range(0, len(desc) - 2 * w + 1, 2 * w):
        k, v = struct.unpack_from(fmt, desc, at)
        if k == AT_NULL:
            break
        if k == key:
            return int(v)
    return None


def _module_at(mem: _Memory, start: int, name: str) -> Module | None:
    """The module whose ELF header is at ``start``; None when no ELF header is there (a data
    file mapped at offset 0, or a page the dump left out)."""
    head = mem.read(start, HEADER_SIZE)
    try:
        h = parse_header(head)
    except NotElfError:
        return None
    except FormatError as exc:
        return Module(start, start, name, None, f"corrupt ELF header in memory: {exc}")
    if h.elf_type not in (ET_DYN, ET_EXEC):
        return None
    try:
        table = mem.read(start + h.phoff, program_header_bytes(h))
        segs = parse_segments(h, table)
    except FormatError as exc:
        return Module(start, start, name, None, f"program headers not in the core: {exc}")
    loads = [s for s in segs if s.type == PT_LOAD]
    if not loads:
        return Module(start, start, name, None, "no PT_LOAD in the module's headers")
    # glibc's load bias: mapping start minus the page-aligned vaddr of the first PT_LOAD.
    bias = start - (min(s.vaddr for s in loads) & ~(PAGE - 1))
    end = bias + max(s.vaddr + s.memsz for s in loads)
    build_id: bytes | None = None
    for s in segs:
        if s.type == PT_NOTE and 0 < s.filesz <= MAX_NOTE_BYTES:
            data = mem.read(bias + s.vaddr, s.filesz)
            build_id = build_id_in(data, h.big_endian, s.align)
            if build_id:
                break
    problem = "" if build_id else "no build-id note readable in the core's memory"
    return Module(start, end, name, build_id, problem)


def read_core(f: BinaryIO) -> Core:
    """Read the modules of the core dump in stream ``f``. Raises NotElfError, NotCoreError,
    TruncatedError or FormatError with a one-line message."""
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    f.seek(0)
    h = parse_header(f.read(HEADER_SIZE))
    if h.elf_type != ET_CORE:
        kind = {1: "a relocatable object", 2: "an executable", 3: "a shared object"}.get(
            h.elf_type, f"ELF type {h.elf_type}")
        raise NotCoreError(f"not a core dump (ELF file is {kind})")
    if not h.phnum:
        raise FormatError("core dump without program headers")
    segs = parse_segments(h, _exact(f, h.phoff, program_header_bytes(h), "program headers"))
    core = Core(h.elf_class, h.big_endian, h.machine)
    dumped_end = max((s.offset + s.filesz for s in segs if s.filesz), default=0)
    if dumped_end > file_size:
        core.truncated = True
        core.warnings.append(
            f"core is truncated: {file_size} of {dumped_end} bytes present; "
            "modules past the end cannot be read")
    mappings: list[tuple[int, int, int, str]] | None = None
    vdso: int | None = None
    for s in segs:
        if s.type != PT_NOTE or not s.filesz:
            continue
        if s.filesz > MAX_NOTE_BYTES:
            raise FormatError(f"implausible note segment size {s.filesz}")
        if s.offset + s.filesz > file_size:
            # gdb's gcore writes the notes last, so a cut core has lost them first; the ELF
            # headers in the dumped memory still name the modules (eu-unstrip -n --core reads
            # them the same way).
            core.warnings.append(
                f"note segment at {s.offset} ends past the end of the truncated core; "
                "modules found from the ELF headers in its memory")
            continue
        data = _exact(f, s.offset, s.filesz, "the note segment")
        try:
            for owner, ntype, desc in iter_notes(data, h.big_endian, 4):
                if owner not in CORE_OWNERS:
                    continue
                if ntype == NT_FILE and mappings is None:
                    mappings = _parse_nt_file(bytes(desc), h)
                elif ntype == NT_AUXV and vdso is None:
                    vdso = _auxv_value(bytes(desc), h, AT_SYSINFO_EHDR)
        except BadNoteError as exc:
            core.warnings.append(f"note segment at {s.offset}: {exc}")
    mem = _Memory(f, [(s.vaddr, s.offset, s.filesz) for s in segs if s.type == PT_LOAD],
                  file_size)
    seen: set[int] = set()
    if mappings is None:
        core.warnings.append("core has no NT_FILE note; scanning dumped memory for ELF headers")
        candidates = [(s.vaddr, "") for s in segs if s.type == PT_LOAD and s.filesz]
    else:
        candidates = [(start, name) for start, _end, ofs, name in mappings if ofs == 0]
    if vdso:
        candidates.append((vdso, VDSO_NAME))
    for start, name in candidates:
        if start in seen:
            continue
        seen.add(start)
        module = _module_at(mem, start, name)
        if module is None and mem.lost(start):
            # Dumped, but the file stops before it: report it rather than drop it silently.
            # (A first page that was never dumped is a data file: the kernel dumps the first
            # page of a mapping only when it starts with the ELF magic.)
            module = Module(start, start, name, None, "past the end of the truncated core")
        if module is not None:
            core.modules.append(module)
    if mappings and not core.modules:
        core.warnings.append(
            "no module headers in the core: it was dumped without ELF headers "
            "(coredump_filter bit 4 off)")
    return core


def read_core_path(path: str | Path) -> Core:
    with open(path, "rb") as f:
        return read_core(f)
