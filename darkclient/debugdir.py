"""Lay debug files out where gdb and other tools look for them: ROOT/.build-id/xx/rest.debug,
and a build's sources under ROOT/usr/src/debug/...

Packages are read only through darkcore's readers (``darkcore.package``), so the client reads
every payload the importer reads, and member names are normalised by the same rule the server
stored them with (``darkcore.paths``). Members are taken from the package stream by install
path and written under a name this module makes (from the build-id, or the normalised path
below a root it was given); an ELF member's own build-id is read back after writing and must
equal the one asked for, so a wrong or hostile member is never installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from darkcore import buildid
from darkcore.elf import ElfInfo, read_elf_path
from darkcore.errors import PackageError
from darkcore.package import Member, iter_members
from darkcore.paths import PathRejected, normalize_member_path


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def build_id_path(root: Path, build_id: str, suffix: str = ".debug") -> Path:
    return root / ".build-id" / (buildid.link_name(build_id) + suffix)


@dataclass(frozen=True, slots=True)
class Target:
    build_id: str | None  # lower-case hex, checked after writing; None: not an ELF file
    member: str  # install path inside the package (normalised here before matching)
    dest: Path


@dataclass(slots=True)
class Outcome:
    target: Target
    ok: bool
    error: str = ""
    mtime: int = 0  # the member's modification time (seconds since the epoch)


def _write(src: Readable, dest: Path) -> str:
    """Copy ``src`` to a temporary file beside ``dest``; returns its path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".darkclient-")
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return tmp


def elf_build_id(read: Callable[[], ElfInfo | None]) -> str | None:
    """The build-id (lower-case hex) of an ELF file, "" when it has none, None when it is
    not ELF; raises PackageError when it is ELF but unreadable."""
    info = read()
    if info is None:
        return None
    return info.build_id.hex() if info.build_id else ""


def check_build_id(member: str, read: Callable[[], ElfInfo | None], wanted: str) -> str:
    """Why the ELF file ``read`` returns is not the one with build-id ``wanted`` ("": it is).
    The one rule for every file the client installs or serves."""
    try:
        found = elf_build_id(read)
    except PackageError as exc:
        return f"{member}: not a usable ELF file ({exc})"
    if found != wanted:
        got = (found or "none") if found is not None else "not ELF"
        return f"{member}: build-id {got} differs from {wanted}"
    return ""


def _install(src: Readable, target: Target, mtime: int) -> Outcome:
    tmp = _write(src, target.dest)
    try:
        if target.build_id is not None:
            error = check_build_id(target.member, lambda: read_elf_path(tmp), target.build_id)
            if error:
                return Outcome(target, False, error)
        os.chmod(tmp, 0o644)
        if mtime:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, target.dest)
        return Outcome(target, True, mtime=mtime)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _paths(names: tuple[str, ...]) -> Iterator[str]:
    for name in names:
        with contextlib.suppress(PathRejected):
            yield normalize_member_path(name)


def extract(package: BinaryIO, targets: list[Target]) -> list[Outcome]:
    """Copy each target's member out of ``package`` (an rpm or deb stream) to its ``dest``.
    Raises darkcore.errors.PackageError when the package itself cannot be read."""
    by_member: dict[str, list[Target]] = {}
    for t in targets:
        with contextlib.suppress(PathRejected):  # a rejected name: "not in the package"
            by_member.setdefault(normalize_member_path(t.member), []).append(t)
    done: dict[Target, Outcome] = {}
    installed: dict[str, Outcome] = {}  # path -> its first outcome, for deb hard links
    for member in iter_members(package, mtimes=True):
        paths = list(_paths(member.names))
        wanted = [t for p in paths for t in by_member.get(p, [])]
        if not wanted:
            continue
        if member.type == "hardlink":  # deb: the data came with an earlier member
            source = installed.get(_link_target(member))
            for t in wanted:
                done[t] = _copy(source, t) if source else Outcome(
                    t, False, f"{t.member}: hard link to a member not extracted")
        elif member.is_regular and member.data is not None:
            first = done[wanted[0]] = _install(member.data, wanted[0], member.mtime)
            for other in wanted[1:]:
                done[other] = _copy(first, other)
            for p in paths:
                installed.setdefault(p, first)
        else:
            for t in wanted:
                done[t] = Outcome(t, False, f"{t.member}: not a regular file ({member.type})")
        if len(done) == len(targets):
            break
    return [done.get(t) or Outcome(t, False, f"{t.member}: not in the package") for t in targets]


def _link_target(member: Member) -> str:
    try:
        return normalize_member_path(member.linkname)
    except PathRejected:
        return ""


def _copy(first: Outcome, other: Target) -> Outcome:
    if not first.ok:
        return Outcome(other, False, first.error)
    other.dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(first.target.dest, other.dest)
    if other.build_id is not None and other.build_id != first.target.build_id:
        other.dest.unlink()
        return Outcome(other, False, f"{other.member}: build-id {first.target.build_id} "
                                     f"differs from {other.build_id}")
    return Outcome(other, True, mtime=first.mtime)


def extract_tree(package: BinaryIO, prefix: str,
                 place: Callable[[str], Path]) -> list[tuple[str, Path, int]]:
    """Every regular file below install path ``prefix`` (e.g. /usr/src/debug/), written to
    ``place(its normalised install path)``; returns (path, where, mtime) of each. Names are
    normalised first, so a hostile name never reaches ``place``."""
    prefix = normalize_member_path(prefix).rstrip("/") + "/"
    written: list[tuple[str, Path, int]] = []
    for member in iter_members(package, mtimes=True):
        if not member.is_regular or member.data is None:
            continue
        paths = [p for p in _paths(member.names) if p.startswith(prefix)]
        if not paths:
            continue
        first = _install(member.data, Target(None, paths[0], place(paths[0])), member.mtime)
        if not first.ok:
            continue
        written.append((paths[0], first.target.dest, member.mtime))
        for other in paths[1:]:  # hard links: the data is read once
            done = _copy(first, Target(None, other, place(other)))
            written.append((other, done.target.dest, member.mtime))
    return written


@dataclass(slots=True)
class Held:
    """A regular file read from a package into memory."""

    paths: list[str]  # its normalised install paths (more than one: hard links)
    data: bytes
    mtime: int


def extract_files(package: BinaryIO, keep: Callable[[str, bytes], bool], need: set[str],
                  budget: int) -> list[Held]:
    """Every regular file of ``package`` with a path in ``need``, and those for which
    ``keep(path, data)`` holds while their bytes fit in ``budget``, read into memory. Reading
    a package once this way answers every later request for its other members; a caller
    checks an ELF file's build-id (``check_build_id``) before handing it out. Raises
    PackageError when the package cannot be read."""
    held: list[Held] = []
    by_path: dict[str, Held] = {}
    spent = 0
    for member in iter_members(package, mtimes=True):
        paths = list(_paths(member.names))
        if member.type == "hardlink":  # deb: the data came with an earlier member
            first = by_path.get(_link_target(member))
            if first is not None:
                first.paths.extend(paths)
            continue
        if not member.is_regular or member.data is None:
            continue
        needed = any(p in need for p in paths)
        if not needed and spent + member.size > budget:
            continue
        data = member.data.read()
        if not needed and not any(keep(p, data) for p in paths):
            continue
        spent += len(data)
        h = Held(paths, data, member.mtime)
        held.append(h)
        for p in paths:
            by_path.setdefault(p, h)
    return held
