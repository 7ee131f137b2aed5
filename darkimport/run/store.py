"""Database writer: one package, one transaction, idempotent.

The one module of darkimport that touches darkserver's models and Django's database layer
(besides djangosetup, which starts Django): everything else asks through the functions here.

The package row's unique nvra is the idempotence key: a package that is already there is left
as it is, and two importers racing on the same package end with one copy (the loser's insert
fails on the unique key and its transaction rolls back whole).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from darkimport.run.records import ElfRecord, PackageScan, Provenance
from darkserver.lookup.models import Build, ElfFile, Package, path_key

# Rows per INSERT: large enough to amortise round trips, small enough for SQLite's
# variable limit (9 columns x 500 rows).
_BATCH = 500


@dataclass(frozen=True, slots=True)
class StoreResult:
    nvra: str
    inserted: bool  # False: the package was already in the database
    rows: int  # ELF rows written


def package_exists(nvra: str) -> bool:
    return bool(Package.objects.filter(nvra=nvra).exists())


def store_scan(scan: PackageScan, provenance: Provenance | None = None) -> StoreResult:
    meta = scan.meta
    prov = provenance or Provenance()
    if package_exists(meta.nvra):
        return StoreResult(meta.nvra, inserted=False, rows=0)
    try:
        with transaction.atomic():
            build = _build_for(scan, prov)
            package = Package.objects.create(
                build=build,
                kind=meta.kind,
                nvra=meta.nvra,
                name=meta.name,
                epoch=meta.epoch,
                version=meta.version,
                release=meta.release,
                arch=meta.arch,
                filename=meta.filename,
                size=meta.size,
                sha256=meta.sha256,
                sigmd5=meta.sigmd5,
                url=prov.url if prov.url is not None else meta.url,
                koji_rpm_id=prov.koji_rpm_id,
                elf_files=scan.elf_files,
                without_build_id=scan.without_build_id,
            )
            rows = _unique_paths(scan)
            for start in range(0, len(rows), _BATCH):
                ElfFile.objects.bulk_create(
                    [
                        ElfFile(
                            package=package,
                            build_id=rec.build_id,
                            path=rec.path,
                            path_key=path_key(rec.path),
                            elf_type=rec.elf_type,
                            machine=rec.machine,
                            elf_class=rec.elf_class,
                            big_endian=rec.big_endian,
                            debug=rec.debug,
                            package_note=rec.package_note,
                        )
                        for rec in rows[start : start + _BATCH]
                    ]
                )
    except IntegrityError:
        # Another importer committed the same package first: that copy stands.
        if package_exists(meta.nvra):
            return StoreResult(meta.nvra, inserted=False, rows=0)
        raise
    return StoreResult(meta.nvra, inserted=True, rows=len(rows))


def _unique_paths(scan: PackageScan) -> list[ElfRecord]:
    seen: dict[str, ElfRecord] = {}
    for rec in scan.elves:
        seen.setdefault(rec.path, rec)
    return list(seen.values())


def _build_for(scan: PackageScan, prov: Provenance) -> Build:
    meta = scan.meta
    version = meta.source_version or meta.version
    release = meta.source_release if meta.source_version else meta.release
    build, created = Build.objects.get_or_create(
        instance=prov.instance,
        name=meta.source_name,
        version=version,
        release=release,
        defaults={"epoch": meta.epoch, "distro": meta.distro, "koji_build_id": prov.koji_build_id},
    )
    if not created and prov.koji_build_id is not None and build.koji_build_id is None:
        build.koji_build_id = prov.koji_build_id
        build.save(update_fields=["koji_build_id"])
    result: Build = build
    return result


def builds_known(instance: str, wanted: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """The (name, version, release) of ``wanted`` that have a build row of ``instance``."""
    found = Build.objects.filter(instance=instance, name__in={n for n, _, _ in wanted}
                                 ).values_list("name", "version", "release")
    return {row for row in found if row in wanted}


def close_connections() -> None:
    """Close this process's database connections (before forking workers that open their own)."""
    from django.db import connections

    connections.close_all()


def close_old_connections() -> None:
    """Drop connections that died or outlived their age, as Django does between requests."""
    from django.db import close_old_connections as close

    close()


def ensure_schema() -> None:
    """Create the tables on first use (SQLite default, fresh databases); a DBA-made MySQL schema
    from createtable.sql already carries its migration record and is left alone."""
    from django.core.management import call_command
    from django.db import connection

    if "lookup_package" not in connection.introspection.table_names():
        call_command("migrate", verbosity=0, interactive=False)
