"""Plain records passed between the readers, the scanner and the database writer.

These are the contract between modules: the readers produce them without touching a database,
the writer (``store``) consumes them without knowing any file format.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ElfRecord:
    """One install path of one ELF file with a build-id (hard links give one record each)."""

    build_id: bytes
    path: str  # absolute, normalised install path, e.g. /usr/lib64/libapr-1.so.0.4.5
    elf_type: int
    machine: int
    elf_class: int  # 32 or 64 (EI_CLASS)
    big_endian: bool | None  # EI_DATA: with the machine it names the architecture (ppc64 /
    # ppc64le); None when not known (rows made from a repository index alone)
    debug: bool  # a separate debug file (/usr/lib/debug/..., .dwz)
    package_note: str | None = None


@dataclass(slots=True)
class PackageMeta:
    """Identity and provenance of one binary package file."""

    kind: str  # "rpm" or "deb"
    name: str
    epoch: int | None
    version: str
    release: str  # rpm release; deb revision ("" for native packages)
    arch: str
    source_name: str  # the build's name: SRPM name or Debian Source
    filename: str  # base file name, e.g. apr-1.4.5-1.fc16.x86_64.rpm
    nvra: str  # rpm: N-V-R.A ; deb: name_version_arch (version without epoch)
    distro: str  # fc40, el9, deb12, ...
    size: int = 0
    sha256: str = ""
    sigmd5: str = ""  # rpm SIGMD5 hex (Koji payloadhash); "" for debs
    url: str = ""  # download URL from the configured templates (or Koji)
    source_version: str = ""  # deb: the source package version when it differs; rpm: ""
    source_release: str = ""


@dataclass(slots=True)
class PackageScan:
    """Everything read from one package, ready for one database transaction."""

    meta: PackageMeta
    elves: list[ElfRecord] = field(default_factory=list)
    elf_files: int = 0  # ELF members seen (each hard-link group once)
    without_build_id: int = 0  # ELF members with no (valid) build-id note
    warnings: list[str] = field(default_factory=list)  # rejected paths, skipped members
    # False when the package carries no digest covering its header and payload (imported,
    # counted as "unverified"); any digest it does carry has been checked.
    verified: bool = True

    @property
    def build_ids(self) -> set[bytes]:
        return {e.build_id for e in self.elves}


@dataclass(slots=True)
class Provenance:
    """Where a package came from, beyond the file itself (Koji imports fill this)."""

    instance: str = ""
    koji_build_id: int | None = None
    koji_rpm_id: int | None = None
    url: str | None = None  # overrides the template URL
