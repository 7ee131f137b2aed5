"""Build-id rows from an rpm's header alone, without reading its payload.

rpmbuild leaves two kinds of evidence in the header's file list:

* build-id links (Fedora's default ``%_build_id_links compat``): the main package carries
  ``/usr/lib/.build-id/xx/rest -> ../../../../usr/bin/foo``, the debuginfo package
  ``/usr/lib/debug/.build-id/xx/rest.debug -> ../../../../../usr/lib/debug/usr/bin/foo-V-R.A.debug``
  (one line);
  a repeated id gets ``rest.1``, ``rest.2``... Only links whose target is a file of *this*
  package count (debuginfo's ``/usr/lib/debug/.build-id/xx/rest`` points into the main package);
* the file class (FILECLASS: libmagic's description of every file, recorded by rpmbuild), e.g.
  ``ELF 64-bit LSB pie executable, x86-64, ..., BuildID[sha1]=86894c68..., stripped``. It says
  which files are ELF, their type and machine, and the build-id even where rpm made no link
  (rpm links only executable files: a 0644 shared library has none).

Rows are only produced when the header accounts for *every* ELF file in the package: each one
needs a build-id (link or class), a known ELF type, class, byte order and machine (libmagic
prints the header's EI_CLASS and EI_DATA: ``ELF 64-bit MSB``). Otherwise — no FILECLASS
(old rpm), an ELF file whose class shows no build-id, a machine name we do not map — the answer
is ``None`` and the caller scans the payload. That keeps the rows identical to a payload scan:
same paths, build-ids, elf_type, machine, class, byte order and debug flag. What the header
cannot give:

* ``package_note`` (the FDO ``.note.package`` JSON inside the ELF file) stays NULL;
* the package's sha256 stays empty (Koji records the SIGMD5, which we keep as sigmd5).

``--verify`` scans the payload as well and reports any difference.
"""

from __future__ import annotations

import posixpath
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from darkcore import buildid
from darkcore.elf import ET_CORE, ET_DYN, ET_EXEC, ET_REL
from darkimport.run.records import ElfRecord

# What the header must hold for header-first import (names as Koji's getRPMHeaders takes them).
HEADER_FIELDS = [
    "FILENAMES", "FILEMODES", "FILELINKTOS", "FILECLASS", "FILEINODES", "FILEDEVICES",
    "FILEFLAGS",
]
RPMFILE_GHOST = 1 << 6  # %ghost: listed in the header, absent from the payload

_LINK = re.compile(
    r"^/usr/lib/(?:debug/)?\.build-id/([0-9a-f]{2})/([0-9a-f]+)(?:\.\d+)?(\.debug)?$"
)
_CLASS_BUILD_ID = re.compile(r"BuildID\[[^\]]*\]=(?:0x)?([0-9a-f]+)")

_ELF_TYPES = {
    "relocatable": ET_REL,
    "executable": ET_EXEC,
    "pie executable": ET_DYN,
    "shared object": ET_DYN,
    "core file": ET_CORE,
}
# libmagic's machine names (file(1) magic/Magdir/elf) -> e_machine.
_MACHINES = {
    "x86-64": 62,
    "Intel 80386": 3,
    "ARM aarch64": 183,
    "ARM": 40,
    "IBM S/390": 22,
    "64-bit PowerPC or cisco 7500": 21,
    "PowerPC or cisco 4500": 20,
    "UCB RISC-V": 243,
    "MIPS": 8,
    "SPARC": 2,
    "SPARC V9": 43,
    "IA-64": 50,
    "LoongArch": 258,
    "eBPF": 247,
}


@dataclass(frozen=True, slots=True)
class HeaderFile:
    path: str
    mode: int
    linkto: str
    fclass: str
    inode: tuple[int, int]  # (device, inode): hard links share it
    ghost: bool


@dataclass(slots=True)
class HeaderRows:
    elves: list[ElfRecord]
    elf_files: int  # ELF files, each hard-link group once
    links: int  # build-id links found in the header


def files_from_header(header: Mapping[str, Any]) -> list[HeaderFile] | None:
    """The header's file list; None when a needed field is missing or inconsistent."""
    names = header.get("FILENAMES")
    if names is None and header.get("BASENAMES") is not None:
        dirs, index = header.get("DIRNAMES") or [], header.get("DIRINDEXES") or []
        names = [dirs[i] + base for i, base in zip(index, header["BASENAMES"], strict=True)]
    if names is None:
        return None
    names = list(names)
    n = len(names)
    modes = _column(header, "FILEMODES", n)
    links = _column(header, "FILELINKTOS", n, "")
    classes = _column(header, "FILECLASS", n)
    inodes = _column(header, "FILEINODES", n, 0)
    devices = _column(header, "FILEDEVICES", n, 0)
    flags = _column(header, "FILEFLAGS", n, 0)
    if modes is None or classes is None or links is None:
        return None
    return [
        HeaderFile(
            str(names[i]), int(modes[i]) & 0xFFFF, str(links[i] or ""), str(classes[i] or ""),
            (int(devices[i]) if devices else 0, int(inodes[i]) if inodes else i),
            bool(int(flags[i]) & RPMFILE_GHOST) if flags else False,
        )
        for i in range(n)
    ]


def _column(header: Mapping[str, Any], name: str, n: int, fill: Any = None) -> list[Any] | None:
    value = header.get(name)
    if value is None or (n and value == []):
        return None if fill is None else [fill] * n
    if not isinstance(value, list):
        value = [value]
    return value if len(value) == n else None


def rows_from_header(header: Mapping[str, Any]) -> HeaderRows | None:
    """Every ELF file's row, from the header alone; None when the header cannot say."""
    files = files_from_header(header)
    if files is None:
        return None
    by_path = {f.path: f for f in files if not f.ghost}
    link_ids = _link_ids(by_path)
    elves: list[ElfRecord] = []
    groups: set[tuple[int, int]] = set()
    for f in by_path.values():
        if not stat.S_ISREG(f.mode):
            continue
        if not f.fclass:
            if f.path in link_ids:
                return None  # a linked file rpm did not classify: cannot tell type/machine
            continue
        if not f.fclass.startswith("ELF "):
            continue
        groups.add(f.inode)
        build_id = link_ids.get(f.path) or _class_build_id(f.fclass)
        kind = _elf_type(f.fclass)
        machine = _machine(f.fclass)
        layout = _class_and_order(f.fclass)
        if build_id is None or kind is None or machine is None or layout is None:
            return None
        elves.append(ElfRecord(build_id, f.path, kind, machine, *layout, is_debug_path(f.path)))
    elves.sort(key=lambda e: e.path)
    links = sum(1 for f in by_path.values() if _LINK.match(f.path) and stat.S_ISLNK(f.mode))
    return HeaderRows(elves, len(groups), links)


def is_debug_path(path: str) -> bool:
    """Separate debug files: under /usr/lib/debug (``.debug`` files and ``.dwz``)."""
    return path.startswith("/usr/lib/debug/")


def _link_ids(by_path: Mapping[str, HeaderFile]) -> dict[str, bytes]:
    """Target path -> build-id, from the build-id links whose target is in this package."""
    found: dict[str, bytes] = {}
    for f in by_path.values():
        match = _LINK.match(f.path)
        if match is None or not stat.S_ISLNK(f.mode) or not f.linkto:
            continue
        hexid = match.group(1) + match.group(2)
        if not buildid.is_build_id(hexid):
            continue
        target = _resolve(f.path, by_path)
        if target is not None:
            found.setdefault(target, bytes.fromhex(hexid))
    return found


def _resolve(link: str, by_path: Mapping[str, HeaderFile]) -> str | None:
    """Follow a symlink inside the package to a regular file of the package, or None."""
    path = link
    for _ in range(8):
        entry = by_path.get(path)
        if entry is None:
            return None
        if stat.S_ISREG(entry.mode):
            return path
        if not stat.S_ISLNK(entry.mode):
            return None
        base = "/" if entry.linkto.startswith("/") else posixpath.dirname(path)
        path = posixpath.normpath(posixpath.join(base, entry.linkto))
    return None


def _class_build_id(fclass: str) -> bytes | None:
    match = _CLASS_BUILD_ID.search(fclass)
    if match is None:
        return None
    hexid = match.group(1)
    if not buildid.is_build_id(hexid):
        return None
    return bytes.fromhex(hexid)


def _elf_type(fclass: str) -> int | None:
    # "ELF 64-bit LSB pie executable, x86-64, ..." -> "pie executable"
    first = fclass.split(", ", 1)[0]
    for order in (" LSB ", " MSB "):
        if order in first:
            return _ELF_TYPES.get(first.split(order, 1)[1].strip())
    return None


def _class_and_order(fclass: str) -> tuple[int, bool] | None:
    """(class, big-endian) from libmagic's ``ELF 64-bit MSB ...``: it prints the header's
    EI_CLASS and EI_DATA, so these are the file's own, not guessed from the rpm's arch."""
    words = fclass.split(", ", 1)[0].split()
    if len(words) < 3 or words[1] not in ("32-bit", "64-bit") or words[2] not in ("LSB", "MSB"):
        return None
    return int(words[1][:2]), words[2] == "MSB"


def _machine(fclass: str) -> int | None:
    parts = fclass.split(", ")
    return _MACHINES.get(parts[1].strip()) if len(parts) > 1 else None
