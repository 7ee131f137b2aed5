"""The schema: a build has packages (rpm or deb); a package has ELF files, one row per path.

Sized for 10^8 ELF rows (about 105 bytes each, all indexes included, on MariaDB): the ELF row's
primary key is (build-id, package, path), so InnoDB keeps a build-id's rows together and a lookup
is one range read; the build-id is binary (VARBINARY(64) on MySQL); the path text lives once per
package name in ``Path`` (the builds of a package install the same paths), and a ``.build-id``
debug path is one shared template row (paths.py).
"""

from __future__ import annotations

import hashlib

from django.db import models

from darkserver.lookup import paths
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

    # 4 bytes, not 8: the id is in every ELF row's primary key and index (10^8 rows).
    id = models.AutoField(primary_key=True, auto_created=True, serialize=False, verbose_name="ID")
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


class Path(models.Model):
    """An install path's text, once per package name (``scope``: the name's UTF-8 bytes) for all
    the builds of that name; or a template shared by every package (paths.py, scope b"")."""

    id = models.AutoField(primary_key=True, auto_created=True, serialize=False, verbose_name="ID")
    scope = ShortBinaryField(max_length=800)  # a package name of up to 200 characters
    path = models.TextField()
    path_key = ShortBinaryField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["path_key", "scope"], name="path_key_scope_unique")
        ]
        # A package's rows are found through its name's paths (package_elves).
        indexes = [models.Index(fields=["scope"], name="path_scope_idx")]

    def __str__(self) -> str:
        return str(self.path)

    @classmethod
    def of(cls, path: str, build_id: bytes, package_name: str) -> Path:
        """The row an ELF row of ``build_id`` at ``path`` in a package named ``package_name``
        points to, made if missing: for tests and one-off writers (the importer makes its
        package's rows in bulk, run/store.py)."""
        text = paths.stored(path, build_id)
        found: Path = cls.objects.get_or_create(
            path_key=path_key(text), scope=paths.scope_of(text, package_name),
            defaults={"path": text})[0]
        return found


class ElfFile(models.Model):
    """One install path of one ELF file in a package (hard links get one row each).

    No id, no path text: the primary key (build-id, package, path) is the row's identity and
    its lookup order. The one secondary index (path, package) serves the path lookup and a
    package's rows (package_elves). ``package`` has no foreign-key constraint, which would
    need an index of its own; the importer deletes a package's rows itself (run/store.py).
    """

    pk = models.CompositePrimaryKey("build_id", "package", "path")
    build_id = ShortBinaryField(max_length=MAX_BUILD_ID_BYTES)
    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="elf_rows",
                                db_constraint=False, db_index=False)
    path = models.ForeignKey(Path, on_delete=models.PROTECT, related_name="+", db_index=False)
    elf_type = models.PositiveSmallIntegerField()
    machine = models.PositiveSmallIntegerField()
    # EI_CLASS and EI_DATA: with e_machine they name the architecture (ppc64 against ppc64le,
    # s390 against s390x). 0 / NULL: a row imported before they were stored.
    elf_class = models.PositiveSmallIntegerField(default=0, help_text="32 or 64; 0 if unknown")
    big_endian = models.BooleanField(null=True, help_text="byte order; NULL if unknown")
    debug = models.BooleanField(default=False)
    package_note = models.TextField(null=True, blank=True, help_text="FDO .note.package JSON")

    class Meta:
        indexes = [models.Index(fields=["path", "package"], name="elf_path_package_idx")]

    def __str__(self) -> str:
        return f"{self.build_id.hex()} {self.path_text}"

    @property
    def path_text(self) -> str:
        """The install path (a query per row unless ``path`` was selected with it)."""
        return paths.expand(self.path.path, bytes(self.build_id))


def package_path_ids(name: str, using: str | None = None) -> list[int]:
    """The ids of every path a package named ``name`` can have a row at: its name's paths and
    the shared templates."""
    scopes = [paths.scope(name), paths.TEMPLATE_SCOPE]
    return list(Path.objects.using(using).filter(scope__in=scopes).values_list("id", flat=True))


def package_elves(package_id: int, name: str, using: str | None = None) -> list[models.Q]:
    """Filters (one per batch of path ids) selecting the ELF rows of package ``package_id``
    (named ``name``) through the (path, package) index: OR them, or query each."""
    ids = package_path_ids(name, using)
    return [models.Q(path_id__in=ids[i : i + PATH_BATCH], package_id=package_id)
            for i in range(0, len(ids), PATH_BATCH)]


# Path ids per IN (...) list (SQLite's variable limit).
PATH_BATCH = 500


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
