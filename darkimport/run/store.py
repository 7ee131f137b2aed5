"""Database writer: one package, one transaction, idempotent.

The one module of darkimport that touches darkserver's models and Django's database layer
(besides djangosetup, which starts Django): everything else asks through the functions here.

The package row's unique nvra is the idempotence key: a package that is already there is left
as it is, and two importers racing on the same package end with one copy (the loser's insert
fails on the unique key and its transaction rolls back whole).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F

from darkimport.run.records import ElfRecord, PackageMeta, PackageScan, Provenance
from darkserver.lookup import counters, paths
from darkserver.lookup.models import (
    Build,
    Counter,
    ElfFile,
    Package,
    Path,
    package_elves,
    path_key,
)

# Rows per INSERT: large enough to amortise round trips, small enough for SQLite's
# variable limit (9 columns x 500 rows).
_BATCH = 500


@dataclass(frozen=True, slots=True)
class StoreResult:
    nvra: str
    inserted: bool  # False: the package was already in the database
    rows: int  # ELF rows written
    replaced: bool = False  # the stored package had other content: its rows were replaced


def package_exists(nvra: str) -> bool:
    return bool(Package.objects.filter(nvra=nvra).exists())


def stored_package(nvra: str) -> Package | None:
    found: Package | None = Package.objects.filter(nvra=nvra).first()
    return found


def same_content(stored: Package, meta: PackageMeta) -> bool | None:
    """Whether a stored package and a scanned file hold the same content; None: cannot tell.
    SIGMD5 first: it covers an rpm's header and payload and survives (re-)signing, which
    changes the file's SHA-256."""
    if stored.sigmd5 and meta.sigmd5:
        return bool(stored.sigmd5 == meta.sigmd5)
    if stored.sha256 and meta.sha256:
        return bool(stored.sha256 == meta.sha256)
    return None


def store_scan(scan: PackageScan, provenance: Provenance | None = None) -> StoreResult:
    """Write one package. A package already stored under the same name is left as it is,
    unless its content differs (a file rebuilt under the same name: the rows describe the
    file that is served now, so they are replaced); a stored row without a checksum gets the
    file's identity, so the next run skips the file unread. The statistics counters
    (darkserver/lookup/counters.py) change in the same transaction."""
    meta = scan.meta
    prov = provenance or Provenance()
    stored = stored_package(meta.nvra)
    if stored is not None and same_content(stored, meta) is not False:
        _fill_identity(stored, meta)
        return StoreResult(meta.nvra, inserted=False, rows=0)
    _ensure_counters((*counters.TOTALS, counters.GENERATION, counters.DISTRO + meta.distro))
    rows = _unique_paths(scan)
    # Path rows are shared by every build of the name and never deleted: made before the
    # package's transaction, like the counters, so that racing importers do not fail on them.
    path_ids = _path_ids(meta.name, rows)
    try:
        with transaction.atomic():
            # Taken first by every import, so that whether a build-id is new is decided by one
            # transaction at a time (and in one order: no deadlock). SQLite's writers are
            # serialised by the IMMEDIATE transaction already.
            list(Counter.objects.select_for_update().filter(name=counters.BUILD_IDS))
            if stored is not None and not _remove(stored):
                # Another importer replaced it first: that copy stands.
                return StoreResult(meta.nvra, inserted=False, rows=0)
            _insert(scan, prov, rows, path_ids)
    except IntegrityError:
        # Another importer committed the same package first: that copy stands.
        if package_exists(meta.nvra):
            return StoreResult(meta.nvra, inserted=False, rows=0)
        raise
    return StoreResult(meta.nvra, inserted=True, rows=len(rows), replaced=stored is not None)


def _fill_identity(stored: Package, meta: PackageMeta) -> None:
    update: dict[str, object] = {}
    if not stored.sha256 and meta.sha256:
        update.update(sha256=meta.sha256, size=meta.size)
    if not stored.sigmd5 and meta.sigmd5:
        update["sigmd5"] = meta.sigmd5
    if update:
        _ensure_counters((counters.GENERATION,))
        with transaction.atomic():
            Package.objects.filter(pk=stored.pk).update(**update)
            _add({counters.GENERATION: 1})  # lookups show the checksums


def _remove(stored: Package) -> bool:
    """Delete a stored package whose file changed (its rows go with it) and take its share off
    the counters; False when the row compared is no longer there as it was."""
    distro = Build.objects.filter(pk=stored.build_id).values_list("distro", flat=True).first()
    # Only the row we compared is replaced: a concurrent replacement leaves no row. A plain
    # DELETE: the ORM's cascade would look for the ELF rows by package alone, which no index
    # serves (a scan of every row); they go through the (path, package) index below.
    connection = connections[router.db_for_write(Package)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(Package._meta.db_table)} "
            "WHERE id = %s AND sha256 = %s AND sigmd5 = %s",
            (stored.pk, stored.sha256, stored.sigmd5))
        if not cursor.rowcount:
            return False
    old_ids: set[bytes] = set()
    old_rows = 0
    for where in package_elves(stored.pk, stored.name):
        elves = ElfFile.objects.filter(where)
        found = [bytes(b) for b in elves.values_list("build_id", flat=True)]
        old_ids.update(found)
        old_rows += len(found)
        elves.delete()
    still = _known_build_ids(old_ids)
    _add({
        counters.PACKAGES: -1,
        counters.ELF_FILES: -old_rows,
        counters.BUILD_IDS: -(len(old_ids) - len(still)),
        counters.WITHOUT_BUILD_ID: -stored.without_build_id,
        counters.DISTRO + (distro or ""): -1,
        counters.GENERATION: 1,  # cached package fields of this id are gone
    })
    return True


def _insert(scan: PackageScan, prov: Provenance, rows: list[ElfRecord],
            path_ids: dict[str, int]) -> None:
    """The package's rows and its share of the counters; call inside a transaction."""
    meta = scan.meta
    build, build_created = _build_for(scan, prov)
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
    ids = {rec.build_id for rec in rows}
    new_ids = len(ids - _known_build_ids(ids))
    _insert_elf_rows(package.pk, rows, path_ids)
    _add({
        counters.BUILDS: int(build_created),
        counters.PACKAGES: 1,
        counters.ELF_FILES: len(rows),
        counters.BUILD_IDS: new_ids,
        counters.WITHOUT_BUILD_ID: scan.without_build_id,
        counters.DISTRO + build.distro: 1,
        counters.GENERATION: 1,  # the web's cached answers of these ids are out of date
    })


def _path_ids(name: str, rows: list[ElfRecord]) -> dict[str, int]:
    """{stored text: lookup_path id} of the rows of a package named ``name`` (paths.py), the
    missing path rows made (INSERT IGNORE: a racing importer's copy is as good)."""
    texts = {paths.stored(rec.path, rec.build_id) for rec in rows}
    keys = {(text, paths.scope_of(text, name)): path_key(text) for text in texts}
    found: dict[str, int] = {}
    for attempt in range(2):
        missing = []
        items = list(keys.items())
        for start in range(0, len(items), _BATCH):
            chunk = dict(items[start : start + _BATCH])
            stored = Path.objects.filter(path_key__in=set(chunk.values())).values_list(
                "id", "path", "scope")
            found.update((text, pk) for pk, text, scope in stored
                         if (text, bytes(scope)) in chunk)
            missing += [k for k in chunk if k[0] not in found]
        if not missing or attempt:
            break
        Path.objects.bulk_create(
            [Path(path=text, scope=scope, path_key=keys[text, scope]) for text, scope in missing],
            batch_size=_BATCH, ignore_conflicts=True)
    return found


_ELF_COLUMNS = ("package", "build_id", "path", "elf_type", "machine", "elf_class",
                "big_endian", "debug", "package_note")


def _insert_elf_rows(package_id: int, rows: list[ElfRecord], path_ids: dict[str, int]) -> None:
    """One INSERT per batch through the DB-API's executemany: the ORM's bulk_create spent its
    time building model instances and SQL per row (2.7 s under cProfile for the benchmark
    corpus's 5,400 rows, against 0.4 s in SQLite itself), the largest non-decode cost. In
    build-id order: the primary key's, so InnoDB appends within each build-id's place."""
    connection = connections[router.db_for_write(ElfFile)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(ElfFile._meta.get_field(c).column) for c in _ELF_COLUMNS)
    sql = (f"INSERT INTO {quote(ElfFile._meta.db_table)} ({columns}) "
           f"VALUES ({', '.join(['%s'] * len(_ELF_COLUMNS))})")
    ordered = sorted(rows, key=lambda rec: rec.build_id)
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), _BATCH):
            cursor.executemany(sql, [
                (package_id, rec.build_id, path_ids[paths.stored(rec.path, rec.build_id)],
                 rec.elf_type, rec.machine, rec.elf_class, rec.big_endian, rec.debug,
                 rec.package_note)
                for rec in ordered[start : start + _BATCH]
            ])


def _unique_paths(scan: PackageScan) -> list[ElfRecord]:
    seen: dict[str, ElfRecord] = {}
    for rec in scan.elves:
        seen.setdefault(rec.path, rec)
    return list(seen.values())


def _ensure_counters(names: tuple[str, ...]) -> None:
    """Counter rows exist before the package's transaction, which then only updates them: two
    importers creating the same row inside their transactions would fail one of them."""
    present = Counter.objects.filter(name__in=names).values_list("name", flat=True)
    for name in set(names) - set(present):
        Counter.objects.get_or_create(name=name)


def _known_build_ids(build_ids: set[bytes]) -> set[bytes]:
    """Those of ``build_ids`` that stored rows have."""
    wanted = sorted(build_ids)
    known: set[bytes] = set()
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        known.update(
            bytes(b) for b in ElfFile.objects.filter(build_id__in=chunk)
            .values_list("build_id", flat=True).distinct()
        )
    return known


def _add(deltas: dict[str, int]) -> None:
    for name, delta in deltas.items():
        if delta and not Counter.objects.filter(name=name).update(value=F("value") + delta):
            # Only when an existing build carries another distro tag than this package's.
            Counter.objects.create(name=name, value=delta)


def _build_for(scan: PackageScan, prov: Provenance) -> tuple[Build, bool]:
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
        _add({counters.GENERATION: 1})  # lookups of the build's other packages show it
    result: Build = build
    return result, bool(created)


def builds_known(instance: str, wanted: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """The (name, version, release) of ``wanted`` that have a build row of ``instance``."""
    found = Build.objects.filter(instance=instance, name__in={n for n, _, _ in wanted}
                                 ).values_list("name", "version", "release")
    return {row for row in found if row in wanted}


# Names or checksums per IN (...) list when asking which packages are known.
_QUERY_BATCH = 500


def package_identities(field: str, values: list[str]) -> list[tuple[str, int, str, str]]:
    """(``field``'s value, size, sha256, sigmd5) of every stored package whose ``field``
    (``filename``, ``nvra`` or ``sha256``) is one of ``values``: what the importer compares a
    file or an index entry with before reading it (run/identity.py, repo/run.py)."""
    if field not in ("filename", "nvra", "sha256"):
        raise ValueError(field)
    unique = sorted(set(values))
    found: list[tuple[str, int, str, str]] = []
    for start in range(0, len(unique), _QUERY_BATCH):
        rows = Package.objects.filter(**{f"{field}__in": unique[start : start + _QUERY_BATCH]})
        found.extend(rows.values_list(field, "size", "sha256", "sigmd5"))
    return found


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
