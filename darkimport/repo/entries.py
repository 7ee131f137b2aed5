"""What a repository index says about one package file: the contract between the index
readers (``rpmmd``, ``debian``) and the run (``run``)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field


class RepoError(Exception):
    """The repository cannot be imported: an index is missing, unreadable or does not match
    the checksum its parent index gives. The message says which file and why."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    kind: str  # "rpm" or "deb"
    location: str  # relative to the repository root, e.g. Packages/h/hello-1.0-1.fc40.x86_64.rpm
    nvra: str  # the package's name in the database (Package.nvra)
    size: int  # bytes, as the index says (-1: the index does not say)
    checksum_type: str  # hashlib name: sha256, sha1, sha512, md5
    checksum: str  # lower-case hex
    arch: str
    build_ids: tuple[str, ...] = ()  # Debian: Build-Ids of a -dbgsym package
    fields: dict[str, str] = field(default_factory=dict)  # Debian: the whole stanza

    @property
    def filename(self) -> str:
        return posixpath.basename(self.location)


def safe_location(location: str, what: str) -> str:
    """An index's file location, refused when it would leave the repository (absolute, ..)."""
    parts = location.split("/")
    if not location or location.startswith("/") or ".." in parts or "\\" in location:
        raise RepoError(f"{what}: refusing location {location!r} outside the repository")
    return location
