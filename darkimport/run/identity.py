"""Which package files are already in the database, decided before any payload is decoded.

A package's identity is its file's size and SHA-256 (``Package.size``/``.sha256``); an rpm also
has its SIGMD5 (``Package.sigmd5``, Koji's payloadhash: the MD5 of header and payload), which
survives re-signing, so a signed copy of an rpm imported unsigned from Koji is known too.

Only files whose base name is already in the database are candidates; a new name costs nothing
here (the scan hashes it on the way anyway). A candidate whose size matches is hashed — SHA-256
runs at ~1.3 GB/s, against ~30 MB/s for decoding a payload, so hashing costs a few per cent of a
first import. Size and mtime are deliberately not taken as identity: a file rewritten within
the file system's timestamp granularity, restored by ``rsync -t``/``cp -p``/``touch -r`` or
rebuilt to the same size keeps both, and a wrong "known" silently loses build-ids, which is
worse than the hashing it saves. An rpm whose bytes differ is then checked by SIGMD5 from its
headers alone (a few kB, no payload).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from darkcore.errors import PackageError
from darkcore.rpm import RpmReader


@dataclass(frozen=True, slots=True)
class StoredIdentity:
    size: int
    sha256: str
    sigmd5: str


def file_sha256(path: Path) -> str:
    with open(path, "rb", buffering=0) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def rpm_sigmd5(path: Path) -> str:
    """SIGMD5 from an rpm's signature header, without reading its payload; "" if unreadable."""
    try:
        with open(path, "rb") as f:
            return RpmReader(f).sigmd5
    except (PackageError, OSError):
        return ""


def stored_identities(names: Iterable[str]) -> dict[str, list[StoredIdentity]]:
    """The identities of the packages stored under these file names."""
    from darkimport.run.store import package_identities

    found: dict[str, list[StoredIdentity]] = {}
    for filename, size, sha256, sigmd5 in package_identities("filename", list(names)):
        found.setdefault(filename, []).append(StoredIdentity(size, sha256, sigmd5))
    return found


def is_known(path: Path, size: int, stored: list[StoredIdentity]) -> bool:
    if any(s.size == size and s.sha256 for s in stored):
        digest = file_sha256(path)
        if any(s.size == size and s.sha256 == digest for s in stored):
            return True
    if path.name.endswith(".rpm") and any(s.sigmd5 for s in stored):
        sigmd5 = rpm_sigmd5(path)
        return bool(sigmd5) and any(s.sigmd5 == sigmd5 for s in stored)
    return False


def split_known(files: list[Path], jobs: int = 1) -> tuple[list[Path], list[Path]]:
    """(files to read, files already imported), each in the order given."""
    stored = stored_identities(f.name for f in files)
    candidates = [f for f in files if f.name in stored]
    if not candidates:
        return list(files), []

    def check(path: Path) -> bool:
        try:
            return is_known(path, os.stat(path).st_size, stored[path.name])
        except OSError:
            return False  # the scan reports the file's problem

    # Threads: hashing and reading release the GIL, and no process pool needs starting.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        verdicts = dict(zip(candidates, pool.map(check, candidates), strict=True))
    known = [f for f in files if verdicts.get(f, False)]
    todo = [f for f in files if not verdicts.get(f, False)]
    return todo, known
