"""dnf/yum repository metadata: ``repodata/repomd.xml`` -> ``primary.xml[.gz|.xz|.zst]``.

    entries(source) -> Iterator[IndexEntry]     every binary rpm the repository lists

repomd.xml names primary's location and its checksum (of the compressed file), which is
checked before primary is parsed; primary is parsed incrementally (Fedora's lists ~70,000
packages), and nothing of a package file is opened here.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import BinaryIO, cast
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring, iterparse

from darkcore.compression import open_decompressed, sniff_compression
from darkcore.errors import PackageError
from darkimport.repo.entries import IndexEntry, RepoError, safe_location
from darkimport.repo.source import RepoSource

REPOMD = "repodata/repomd.xml"
_REPO_NS = "{http://linux.duke.edu/metadata/repo}"
_COMMON_NS = "{http://linux.duke.edu/metadata/common}"


def primary_location(repomd: bytes) -> tuple[str, str, str]:
    """(location, checksum type, checksum) of primary.xml from repomd.xml's bytes."""
    try:
        root = fromstring(repomd)
    except Exception as exc:  # defusedxml and expat raise several types
        raise RepoError(f"{REPOMD}: not XML: {exc}") from exc
    for data in root.iter(f"{_REPO_NS}data"):
        if data.get("type") != "primary":
            continue
        location = data.find(f"{_REPO_NS}location")
        checksum = data.find(f"{_REPO_NS}checksum")
        if location is None or checksum is None or not location.get("href"):
            raise RepoError(f"{REPOMD}: primary without location or checksum")
        kind = _hash_name(checksum.get("type", ""), REPOMD)
        href = safe_location(location.get("href", ""), REPOMD)
        return href, kind, (checksum.text or "").strip().lower()
    raise RepoError(f"{REPOMD}: lists no primary metadata")


def _hash_name(kind: str, what: str) -> str:
    kind = {"sha": "sha1"}.get(kind, kind)  # yum's old name for SHA-1
    if kind not in ("sha1", "sha224", "sha256", "sha384", "sha512", "md5"):
        raise RepoError(f"{what}: unsupported checksum type {kind!r}")
    return kind


def entries(source: RepoSource) -> Iterator[IndexEntry]:
    href, kind, expected = primary_location(source.read_bytes(REPOMD))
    data = source.read_bytes(href)
    actual = hashlib.new(kind, data).hexdigest()
    if actual != expected:
        raise RepoError(f"{href}: {kind} {actual} does not match repomd.xml's {expected}")
    compression = sniff_compression(data[:8]) or "none"
    if compression not in ("gzip", "xz", "zstd", "bzip2", "none"):
        raise RepoError(f"{href}: unsupported compression {compression}")
    stream = open_decompressed(cast(BinaryIO, io.BytesIO(data)), compression, external=False)
    try:
        yield from parse_primary(stream, href)
    except PackageError as exc:
        raise RepoError(f"{href}: {exc}") from exc


def parse_primary(stream: BinaryIO, what: str = "primary.xml") -> Iterator[IndexEntry]:
    """The binary rpms of a primary.xml stream, one ``<package>`` element at a time."""
    try:
        for _event, element in iterparse(stream, events=("end",)):
            if element.tag != f"{_COMMON_NS}package":
                continue
            if element.get("type") == "rpm":
                entry = _entry(element, what)
                if entry is not None:
                    yield entry
            element.clear()  # keep memory flat over 10^5 packages
    except RepoError:
        raise
    except Exception as exc:  # expat's ParseError and friends: a broken index
        raise RepoError(f"{what}: unreadable: {exc}") from exc


def _entry(pkg: Element, what: str) -> IndexEntry | None:
    def text(tag: str) -> str:
        node = pkg.find(f"{_COMMON_NS}{tag}")
        return (node.text or "").strip() if node is not None else ""

    name, arch = text("name"), text("arch")
    if arch in ("src", "nosrc"):
        return None  # source rpms hold no ELF files to index
    version = pkg.find(f"{_COMMON_NS}version")
    checksum = pkg.find(f"{_COMMON_NS}checksum")
    location = pkg.find(f"{_COMMON_NS}location")
    size = pkg.find(f"{_COMMON_NS}size")
    if not name or version is None or checksum is None or location is None:
        raise RepoError(f"{what}: package {name or '?'} lacks version, checksum or location")
    ver, rel = version.get("ver", ""), version.get("rel", "")
    return IndexEntry(
        kind="rpm",
        location=safe_location(location.get("href", ""), what),
        nvra=f"{name}-{ver}-{rel}.{arch}",
        size=int(size.get("package", "-1")) if size is not None else -1,
        checksum_type=_hash_name(checksum.get("type", ""), what),
        checksum=(checksum.text or "").strip().lower(),
        arch=arch,
    )
