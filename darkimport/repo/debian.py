"""A Debian archive: ``dists/SUITE/Release`` -> ``COMPONENT/binary-ARCH/Packages[.xz|.gz]``.

    entries(source, suite, components=(), architectures=()) -> Iterator[IndexEntry]

Every Packages file is checked against the SHA256 list of the Release file before it is
parsed. Release's own signature (InRelease / Release.gpg) is not checked here: point the
importer at a mirror you trust, as apt's ``[trusted=yes]`` would. Stanzas are read with the
deb822 reader of ``darkcore.deb`` that reads a package's control file.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence
from typing import BinaryIO, cast

from darkcore.compression import open_decompressed
from darkcore.deb import parse_control
from darkcore.errors import PackageError
from darkimport.repo.entries import IndexEntry, RepoError, safe_location
from darkimport.repo.source import RepoSource

# Preferred first: the smallest download.
_PACKAGES_NAMES = (("Packages.xz", "xz"), ("Packages.gz", "gzip"), ("Packages", "none"))

# Debian architecture -> ELF e_machine, class and big-endianness, for rows made from an index
# alone (dbgsym Build-Ids): what the architecture's ELF files say of themselves.
DEB_ARCH_ELF = {
    "amd64": (62, 64, False), "i386": (3, 32, False), "arm64": (183, 64, False),
    "armhf": (40, 32, False), "armel": (40, 32, False), "ppc64el": (21, 64, False),
    "ppc64": (21, 64, True), "s390x": (22, 64, True), "mips64el": (8, 64, False),
    "mipsel": (8, 32, False), "riscv64": (243, 64, False), "loong64": (258, 64, False),
}


class Release:
    """The fields of a Release file and its SHA256 index list."""

    def __init__(self, text: str, what: str) -> None:
        try:
            self.fields = parse_control(text)
        except PackageError as exc:
            raise RepoError(f"{what}: {exc}") from exc
        self.what = what
        self.components = self.fields.get("Components", "").split()
        self.architectures = [a for a in self.fields.get("Architectures", "").split()
                              if a != "all"]
        self.sha256: dict[str, tuple[int, str]] = {}
        for line in self.fields.get("SHA256", "").splitlines():
            parts = line.split()
            if len(parts) == 3:
                digest, size, path = parts
                self.sha256[path] = (int(size), digest.lower())
        if not self.sha256:
            raise RepoError(f"{what}: no SHA256 list of indexes")


def release_text(data: bytes) -> str:
    """Release's text; an InRelease's clear-signed body without its armour."""
    text = data.decode("utf-8", "replace")
    if text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
        text = body.split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]
        text = "\n".join(line[2:] if line.startswith("- ") else line
                         for line in text.splitlines())
    return text


def read_release(source: RepoSource, suite: str) -> Release:
    base = f"dists/{suite}"
    try:
        data = source.read_bytes(f"{base}/Release")
        return Release(release_text(data), f"{base}/Release")
    except RepoError as first:
        try:
            data = source.read_bytes(f"{base}/InRelease")
        except RepoError:
            raise first from None
        return Release(release_text(data), f"{base}/InRelease")


def entries(source: RepoSource, suite: str, components: Sequence[str] = (),
            architectures: Sequence[str] = ()) -> Iterator[IndexEntry]:
    release = read_release(source, suite)
    comps = list(components) or release.components
    archs = list(architectures) or release.architectures
    for wanted, have, what in ((comps, release.components, "component"),
                               (archs, release.architectures, "architecture")):
        unknown = [w for w in wanted if have and w not in have]
        if unknown:
            raise RepoError(f"{release.what} lists no {what} {', '.join(unknown)} "
                            f"(it has: {' '.join(have)})")
    if not comps or not archs:
        raise RepoError(f"{release.what}: no Components or Architectures to import")
    for component in comps:
        for arch in archs:
            yield from _packages(source, suite, release, f"{component}/binary-{arch}")


def _packages(source: RepoSource, suite: str, release: Release, directory: str
              ) -> Iterator[IndexEntry]:
    for name, compression in _PACKAGES_NAMES:
        listed = release.sha256.get(f"{directory}/{name}")
        if listed is None:
            continue
        where = f"dists/{suite}/{directory}/{name}"
        data = source.read_bytes(where)
        size, digest = listed
        actual = hashlib.sha256(data).hexdigest()
        if len(data) != size or actual != digest:
            raise RepoError(f"{where}: sha256 {actual} ({len(data)} bytes) does not match "
                            f"{release.what}'s {digest} ({size} bytes)")
        stream = open_decompressed(cast(BinaryIO, io.BytesIO(data)), compression, external=False)
        try:
            yield from parse_packages(stream, where)
        except PackageError as exc:
            raise RepoError(f"{where}: {exc}") from exc
        return
    raise RepoError(f"{release.what} lists no Packages index for {directory}")


def stanzas(stream: BinaryIO) -> Iterator[dict[str, str]]:
    """The paragraphs of a deb822 file, one at a time."""
    lines: list[str] = []
    for line in io.TextIOWrapper(stream, encoding="utf-8", errors="replace"):
        if line.strip():
            lines.append(line)
        elif lines:
            yield parse_control("".join(lines))
            lines = []
    if lines:
        yield parse_control("".join(lines))


def parse_packages(stream: BinaryIO, what: str = "Packages") -> Iterator[IndexEntry]:
    for fields in stanzas(stream):
        try:
            package, version, arch = fields["Package"], fields["Version"], fields["Architecture"]
            location, size, digest = fields["Filename"], fields["Size"], fields["SHA256"]
        except KeyError as exc:
            raise RepoError(f"{what}: stanza {fields.get('Package', '?')} has no {exc}") from None
        plain = version.split(":", 1)[1] if ":" in version else version
        yield IndexEntry(
            kind="deb",
            location=safe_location(location, what),
            nvra=f"{package}_{plain}_{arch}",
            size=int(size),
            checksum_type="sha256",
            checksum=digest.lower(),
            arch=arch,
            build_ids=tuple(fields.get("Build-Ids", "").lower().split()),
            fields=fields,
        )
