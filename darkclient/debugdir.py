"""Lay debug files out where gdb and other tools look for them: ROOT/.build-id/xx/rest.debug.

Members are taken from the package stream by their install path (from the server's match list)
and written under a name made from the build-id only; after writing, the file's own build-id
is read back and must equal the one asked for, so a wrong or hostile member is never installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from darkclient.archive import Readable, iter_members
from darkclient.elf import read_elf_path
from darkclient.errors import FormatError


def build_id_path(root: Path, build_id: str, suffix: str = ".debug") -> Path:
    return root / ".build-id" / build_id[:2] / (build_id[2:] + suffix)


@dataclass(frozen=True, slots=True)
class Target:
    build_id: str  # lower-case hex
    member: str  # install path inside the package
    dest: Path


@dataclass(slots=True)
class Outcome:
    target: Target
    ok: bool
    error: str = ""


def _install(src: Readable, target: Target) -> Outcome:
    target.dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.dest.parent, prefix=".darkclient-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        try:
            found = read_elf_path(tmp).build_id
        except FormatError as exc:
            return Outcome(target, False, f"{target.member}: not a usable ELF file ({exc})")
        if found is None or found.hex() != target.build_id:
            got = found.hex() if found else "none"
            return Outcome(target, False,
                           f"{target.member}: build-id {got} differs from {target.build_id}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target.dest)
        return Outcome(target, True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def extract(package: IO[bytes], targets: list[Target]) -> list[Outcome]:
    """Copy each target's member out of ``package`` (an rpm or deb stream) to its ``dest``."""
    by_member: dict[str, list[Target]] = {}
    for t in targets:
        by_member.setdefault(t.member, []).append(t)
    done: dict[Target, Outcome] = {}
    pending_links: dict[tuple[int, int], list[Target]] = {}
    for member in iter_members(package):
        wanted = list(by_member.get(member.path, []))
        if member.link_key is not None:
            if member.size == 0 and wanted:
                # An earlier hard link: the data comes with a later link of the same inode.
                pending_links.setdefault(member.link_key, []).extend(wanted)
                continue
            wanted += pending_links.pop(member.link_key, [])
        if not wanted or not member.is_file:
            continue
        first = wanted[0]
        done[first] = _install(member.data, first)
        for other in wanted[1:]:
            if done[first].ok:
                other.dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(first.dest, other.dest)
                done[other] = Outcome(other, True)
            else:
                done[other] = Outcome(other, False, done[first].error)
        if len(done) == len(targets):
            break
    return [done.get(t) or Outcome(t, False, f"{t.member}: not in the package") for t in targets]
