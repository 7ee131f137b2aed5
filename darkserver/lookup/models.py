"""The schema: a build has packages (rpm or deb); a package has ELF files, one row per path.

Sized for 10^8 ELF rows: the build-id is stored as binary (VARBINARY(64) on MySQL), the install
path is indexed through a 16-byte hash rather than the text, so both indexes stay small.
"""

from __future__ import annotations

import hashlib

from django.db import models

from darkserver.lookup.fields import ShortBinaryField

MAX_BUILD_ID_BYTES = 64


def path_key(path: str) -> bytes:
    """The 16-byte index key of an install path (first half of its SHA-256)."""
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).digest()[:16]


class Build(models.Model):
    """A source build: one Koji build, or one Debian source package version."""

    instance = models.CharField(max_length=64, default="", help_text="Koji instance; '' if local")
    koji_build_id = models.BigIntegerField(null=True, blank=True)
    name = models.CharField(max_length=200)
    epoch = models.IntegerField(null=True, blank=True)
    version = models.CharField(max_length=128)
    release = models.CharField(max_length=128)
    distro = models.CharField(max_length=32, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "name", "version", "release"], name="build_nvr_unique"
            )
        ]
        indexes = [models.Index(fields=["name"], name="build_name_idx")]

    def __str__(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"


class Package(models.Model):
    """One binary package file: an rpm or a deb."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="packages")
    kind = models.CharField(max_length=8)
    # rpm: N-V-R.A (no .rpm); deb: name_version_arch. Unique: re-importing is a no-op.
    nvra = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=200)
    epoch = models.IntegerField(null=True, blank=True)
    version = models.CharField(max_length=128)
    release = models.CharField(max_length=128)
    arch = models.CharField(max_length=32)
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, default="")
    sigmd5 = models.CharField(max_length=32, default="", help_text="rpm SIGMD5 (Koji payloadhash)")
    url = models.CharField(max_length=1024, default="")
    koji_rpm_id = models.BigIntegerField(null=True, blank=True)
    elf_files = models.IntegerField(default=0, help_text="ELF files seen, with or without build-id")
    without_build_id = models.IntegerField(default=0)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["name"], name="package_name_idx"),
            # The package's identity: an importer skips a file (or a repository index entry)
            # whose checksum is already here without reading its payload.
            models.Index(fields=["sha256"], name="package_sha256_idx"),
            models.Index(fields=["filename"], name="package_filename_idx"),
        ]

    def __str__(self) -> str:
        return str(self.nvra)


class ElfFile(models.Model):
    """One install path of one ELF file in a package (hard links get one row each)."""

    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="elf_rows")
    build_id = ShortBinaryField(max_length=MAX_BUILD_ID_BYTES)
    path = models.TextField()
    path_key = ShortBinaryField(max_length=16)
    elf_type = models.PositiveSmallIntegerField()
    machine = models.PositiveSmallIntegerField()
    # EI_CLASS and EI_DATA: with e_machine they name the architecture (ppc64 against ppc64le,
    # s390 against s390x). 0 / NULL: a row imported before they were stored.
    elf_class = models.PositiveSmallIntegerField(default=0, help_text="32 or 64; 0 if unknown")
    big_endian = models.BooleanField(null=True, help_text="byte order; NULL if unknown")
    debug = models.BooleanField(default=False)
    package_note = models.TextField(null=True, blank=True, help_text="FDO .note.package JSON")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["package", "path_key"], name="elf_package_path_unique")
        ]
        indexes = [
            models.Index(fields=["build_id"], name="elf_build_id_idx"),
            models.Index(fields=["path_key"], name="elf_path_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.build_id.hex()} {self.path}"


class Counter(models.Model):
    """A running total the importer keeps in each package's transaction (counters.py), so that
    /api/v1/stats reads a few rows instead of counting 10^8 ELF rows."""

    name = models.CharField(max_length=64, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class ImportRun(models.Model):
    """The audit trail: one row per import run (a directory, a repository), written as it
    starts and completed when it ends; a row left 'running' is a run that was killed."""

    source = models.CharField(max_length=1024, help_text="path or repository URL (+ suite)")
    kind = models.CharField(max_length=16, help_text="files, rpm-md, debian")
    status = models.CharField(max_length=16, default="running", help_text="running, done, failed")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    new = models.IntegerField(default=0, help_text="packages imported by this run")
    known = models.IntegerField(default=0, help_text="packages skipped: already imported")
    failed = models.IntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0, help_text="package bytes read or downloaded")
    seconds = models.FloatField(default=0.0)

    class Meta:
        indexes = [models.Index(fields=["started_at"], name="importrun_started_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.source} {self.started_at:%Y-%m-%d %H:%M}"
