"""Every database read of the web service, next to the models. Read-only by construction.

The lookup functions return plain row dicts (``.values()``, joined to package and build in the
same query) for ``serialize``; no model instances, no per-row queries.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Max, Q

from darkserver.lookup import counters, paths, replicas
from darkserver.lookup.models import (
    Build,
    ElfFile,
    ImportRun,
    Package,
    Path,
    package_elves,
    path_key,
)
from darkserver.lookup.replicas import failover

log = logging.getLogger(__name__)

Row = dict[str, Any]
T = TypeVar("T")

PACKAGE_FIELDS = (
    "kind", "nvra", "name", "epoch", "version", "release", "arch", "filename", "size", "sha256",
    "sigmd5", "url", "koji_rpm_id",
)
BUILD_FIELDS = ("name", "epoch", "version", "release", "distro", "instance", "koji_build_id")
# One ELF row with its path text, package and build, as serialize.py reads it (under the keys
# ROW_KEYS: the path text as "path").
MATCH_FIELDS = (
    "build_id", "path__path", "elf_type", "machine", "elf_class", "big_endian", "debug",
    "package_note", "package_id",
    *(f"package__{f}" for f in PACKAGE_FIELDS),
    *(f"package__build__{f}" for f in BUILD_FIELDS),
)
ROW_KEYS = ("build_id", "path", *MATCH_FIELDS[2:])
# MATCH_FIELDS in two parts: the ELF table's own columns (package_id last), read per lookup by
# the fast path, and the package and build columns, which it caches per connection
# (pkgcache.py). ELF_FIELDS + PACKAGE_PART_FIELDS is MATCH_FIELDS, so a row assembled from the
# two parts is the joined query's row.
ELF_FIELDS = MATCH_FIELDS[: MATCH_FIELDS.index("package_id") + 1]
PACKAGE_PART_FIELDS = MATCH_FIELDS[len(ELF_FIELDS):]
# Ids per IN (...) list: under SQLite's historic 999-variable limit, few round trips for 10^4 ids.
CHUNK = 500


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# IN lists are padded up to one of these sizes, so that few statements are ever compiled.
IN_SIZES = (1, 8, 64, CHUNK)


@functools.lru_cache(maxsize=32)
def _lookup_sql(alias: str, size: int) -> str:
    """The SQL of "rows whose build-id is one of ``size`` values", compiled once per database.

    Compiling a three-table ``.values()`` query costs more than running it (about 1 ms against
    0.1 ms on SQLite), and Django's per-row converters as much again for a batch; this is the
    hot path, so the ORM writes the SQL once and the rows come straight from the cursor.
    """
    # Distinct placeholder values: the ORM drops duplicates from an IN list.
    placeholders = [i.to_bytes(2, "big") for i in range(size)]
    qs = ElfFile.objects.using(alias).filter(build_id__in=placeholders)
    sql, params = qs.values(*MATCH_FIELDS).query.get_compiler(using=alias).as_sql()
    if len(params) != size or str(sql).count("%s") != size:  # pragma: no cover
        raise AssertionError(f"unexpected parameters {params!r} in {sql}")  # a Django change
    # Named parameters: Django's SQLite cursor rewrites positional "%s" with a regular
    # expression on every execute (~15-30 us for this statement), named ones with one "%".
    parts = str(sql).split("%s")
    return "".join(f"{part}%(p{i})s" for i, part in enumerate(parts[:-1])) + parts[-1]


@functools.lru_cache(maxsize=32)
def _elf_sql(alias: str, size: int) -> str:
    """The SQL of "the ELF_FIELDS of rows whose build-id is one of ``size`` values": the
    fast path's lookup without the join (pkgcache.py adds the package and build columns). The
    one place that builds it, like _lookup_sql."""
    placeholders = [i.to_bytes(2, "big") for i in range(size)]
    qs = ElfFile.objects.using(alias).filter(build_id__in=placeholders)
    return _named(qs.values(*ELF_FIELDS), alias, size)


@functools.lru_cache(maxsize=32)
def _package_part_sql(alias: str, size: int) -> str:
    """The SQL of "id and PACKAGE_PART_FIELDS of the packages whose id is one of ``size``
    values" (with their builds): what pkgcache.py reads for package ids it has not cached."""
    qs = Package.objects.using(alias).filter(id__in=list(range(1, size + 1)))
    fields = [f.removeprefix("package__") for f in PACKAGE_PART_FIELDS]
    return _named(qs.values("id", *fields), alias, size)


def _named(qs: Any, alias: str, size: int) -> str:
    """A ``.values()`` query with ``size`` parameters as SQL with parameters %(p0)s.. (see
    _lookup_sql for why)."""
    sql, params = qs.query.get_compiler(using=alias).as_sql()
    if len(params) != size or str(sql).count("%s") != size:  # pragma: no cover
        raise AssertionError(f"unexpected parameters {params!r} in {sql}")  # a Django change
    parts = str(sql).split("%s")
    return "".join(f"{part}%(p{i})s" for i, part in enumerate(parts[:-1])) + parts[-1]


@functools.cache
def _param_names(size: int) -> tuple[str, ...]:
    return tuple(f"p{i}" for i in range(size))


# Runs the lookup statement for ``size`` ids with parameters p0..p<size-1> and returns the raw
# rows: through Django's connection by default, through the ASGI fast path's own connections.
Fetch = Callable[[int, dict[str, bytes]], Sequence[Sequence[Any]]]


def lookup_alias() -> str:
    return str(router.db_for_read(ElfFile) or DEFAULT_DB_ALIAS)


def lookup_sql(alias: str, size: int, paramstyle: str = "pyformat") -> str:
    """The lookup statement for ``size`` ids in a driver's own parameter style: ``pyformat``
    (``%(p0)s``: Django's cursors, MySQLdb) or ``named`` (``:p0``: the sqlite3 module)."""
    sql = _lookup_sql(alias, size)
    if paramstyle == "named":
        return sql % {name: f":{name}" for name in _param_names(size)}
    return sql


def split_sql(alias: str, size: int, paramstyle: str = "pyformat") -> tuple[str, str]:
    """The fast path's two statements for ``size`` ids, in a driver's parameter style (see
    lookup_sql): the ELF-only lookup (_elf_sql) and the package part read (_package_part_sql,
    ``size`` package ids)."""
    return tuple(  # type: ignore[return-value]
        _styled(sql, size, paramstyle)
        for sql in (_elf_sql(alias, size), _package_part_sql(alias, size))
    )


def padded(values: Sequence[Any]) -> tuple[int, dict[str, Any]]:
    """The statement size (IN_SIZES) for ``values`` (at most CHUNK, at least one) and its
    parameters p0.., padded with repeats of the first value, which match nothing new."""
    size = next(n for n in IN_SIZES if n >= len(values))
    padding = [values[0]] * (size - len(values))
    return size, dict(zip(_param_names(size), [*values, *padding], strict=True))


def _styled(sql: str, size: int, paramstyle: str) -> str:
    if paramstyle == "named":
        return sql % {name: f":{name}" for name in _param_names(size)}
    return sql


@failover
def _django_fetch(size: int, params: dict[str, bytes]) -> Sequence[Sequence[Any]]:
    alias = lookup_alias()
    with connections[alias].cursor() as cursor:
        cursor.execute(_lookup_sql(alias, size), params)
        return cursor.fetchall()  # type: ignore[no-any-return]


def _raw(build_ids: list[bytes], fetch: Fetch | None = None) -> Sequence[Sequence[Any]]:
    """The rows (MATCH_FIELDS in order) with any of ``build_ids`` (at most CHUNK), in one
    query, in no particular order."""
    size = next(n for n in IN_SIZES if n >= len(build_ids))
    padded = build_ids + [build_ids[0]] * (size - len(build_ids))  # repeats match nothing new
    params = dict(zip(_param_names(size), padded, strict=True))
    return (fetch or _django_fetch)(size, params)


def _expanded(row: Sequence[Any]) -> Row:
    """A raw row (MATCH_FIELDS in order) as serialize reads it (ROW_KEYS), its path text
    expanded from the row's own build-id when it is a template (paths.py)."""
    found = dict(zip(ROW_KEYS, row, strict=True))
    if paths.MARK in found["path"]:
        found["path"] = paths.expand(found["path"], bytes(found["build_id"]))
    return found


def _values(rows: Iterable[Row]) -> list[Row]:
    """``.values(*MATCH_FIELDS)`` rows as serialize reads them."""
    return [_expanded([r[f] for f in MATCH_FIELDS]) for r in rows]


def _rows(build_ids: list[bytes], fetch: Fetch | None = None) -> list[Row]:
    """Rows with any of ``build_ids`` (at most CHUNK) in one query, in no particular order.

    The values are the database's own: ``debug`` may be 0/1 and ``build_id`` bytes or a
    memoryview, which ``serialize`` accepts.
    """
    return [_expanded(row) for row in _raw(build_ids, fetch)]


def raw_rows(build_ids: list[bytes], fetch: Fetch) -> list[Sequence[Any]]:
    """The rows of every id in ``build_ids`` (distinct), one query per CHUNK ids: what the
    fast path reads once for all the single lookups waiting together (coalesce.py)."""
    found: list[Sequence[Any]] = []
    for chunk in _chunks(build_ids, CHUNK):
        found.extend(_raw(chunk, fetch))
    return found


def prefetched(rows: Sequence[Sequence[Any]]) -> Fetch:
    """A Fetch that answers from ``rows`` already read instead of the database: the lookup
    functions then give exactly the answer the query would have given."""

    def fetch(size: int, params: dict[str, bytes]) -> Sequence[Sequence[Any]]:
        wanted = set(params.values())
        return [row for row in rows if bytes(row[0]) in wanted]

    return fetch


def _by_package_and_path(row: Row) -> tuple[str, str]:
    return row["package__nvra"], row["path"]


def by_build_id(build_id: str, fetch: Fetch | None = None) -> list[Row]:
    """Every ELF row with this (normalised, hex) build-id, by package NVRA and path."""
    return sorted(_rows([bytes.fromhex(build_id)], fetch), key=_by_package_and_path)


def by_build_ids(build_ids: Iterable[str], fetch: Fetch | None = None) -> dict[str, list[Row]]:
    """Rows per requested id (ids with no row are absent): one query per CHUNK ids."""
    wanted = [bytes.fromhex(b) for b in dict.fromkeys(build_ids)]
    found: dict[str, list[Row]] = {}
    for chunk in _chunks(wanted, CHUNK):
        for row in _rows(chunk, fetch):
            found.setdefault(bytes(row["build_id"]).hex(), []).append(row)
    for rows in found.values():
        rows.sort(key=_by_package_and_path)
    return found


def prefix_range(prefix: str) -> tuple[bytes, bytes | None]:
    """The binary range [low, high) holding every build-id that starts with the hex ``prefix``.

    An odd number of digits ends in half a byte: ``abc`` covers ``ab c0`` up to ``ab d0``.
    A prefix of only ``f`` digits has no upper bound.
    """
    digits = len(prefix)
    pad = "0" * (digits % 2)
    low = bytes.fromhex(prefix + pad)
    following = int(prefix, 16) + 1
    if following >> (4 * digits):
        return low, None
    return low, bytes.fromhex(f"{following:0{digits}x}" + pad)


@failover
def by_prefix(prefix: str, limit: int) -> tuple[list[Row], bool]:
    """Rows whose build-id starts with ``prefix`` (an index range scan), at most ``limit``."""
    low, high = prefix_range(prefix)
    qs = ElfFile.objects.filter(build_id__gte=low)
    if high is not None:
        qs = qs.filter(build_id__lt=high)
    ordered = qs.order_by("build_id", "package__nvra", "path__path").values(*MATCH_FIELDS)
    rows = _values(ordered[: limit + 1])
    # A template's text sorts apart from the paths it stands for: the order of the expanded ones.
    rows.sort(key=lambda r: (bytes(r["build_id"]), r["package__nvra"], r["path"]))
    return rows[:limit], len(rows) > limit


@failover
def by_path(path: str, limit: int) -> tuple[list[Row], bool]:
    """Rows installed at ``path``: its path rows found through the 16-byte path hash (of every
    package name), then the ELF rows through the (path, package) index. A ``.build-id`` path
    is also searched as its template with its build-id."""
    where = Q(path_id__in=_path_ids(path))
    template = paths.split(path)
    if template is not None:
        text, build_id = template
        where |= Q(path_id__in=_path_ids(text), build_id=build_id)
    qs = ElfFile.objects.filter(where)
    rows = _values(qs.order_by("package__nvra").values(*MATCH_FIELDS)[: limit + 1])
    return rows[:limit], len(rows) > limit


def _path_ids(text: str) -> list[int]:
    """The lookup_path ids holding ``text`` (one per package name that has it)."""
    found = Path.objects.filter(path_key=path_key(text), path=text)
    return list(found.values_list("id", flat=True))


@failover
def package_row(nvra: str) -> Row | None:
    """A package and its build, keyed like MATCH_FIELDS (without the ELF keys), or None."""
    fields = [*PACKAGE_FIELDS, *(f"build__{f}" for f in BUILD_FIELDS)]
    found = Package.objects.filter(nvra=nvra).values("id", *fields).first()
    if found is None:
        return None
    row = {f"package__{k}": v for k, v in found.items() if k != "id"}
    row["package_id"] = found["id"]
    return row


# Fedora's rpmbuild puts a build's sources (/usr/src/debug/NAME-V-R.ARCH/...) in one package
# per build and arch named after the source package: NAME-debugsource.
SOURCE_PACKAGE_SUFFIX = "-debugsource"


SOURCE_FIELDS = ("id", *PACKAGE_FIELDS, *(f"build__{f}" for f in BUILD_FIELDS))


@functools.lru_cache(maxsize=32)
def _source_sql(alias: str, size: int) -> tuple[str, tuple[Any, ...]]:
    """The SQL of source_rows for ``size`` package ids (positional: the ids first), and the
    parameters that follow them, compiled once per database like _lookup_sql: compiling the
    query cost ~1.2 ms of the ~1.5 ms it took, once per source file a debugger asks for."""
    placeholders = list(range(1, size + 1))  # distinct: the ORM drops duplicates
    builds = Package.objects.using(alias).filter(id__in=placeholders).values("build_id")
    qs = (Package.objects.using(alias)
          .filter(build_id__in=builds, name__endswith=SOURCE_PACKAGE_SUFFIX)
          .order_by("nvra").values(*SOURCE_FIELDS))
    sql, params = qs.query.get_compiler(using=alias).as_sql()
    if list(params[:size]) != placeholders:  # pragma: no cover - a Django change
        raise AssertionError(f"unexpected parameters {params!r} in {sql}")
    return str(sql), tuple(params[size:])


@failover
def source_rows(package_ids: Iterable[int]) -> list[Row]:
    """The source-bearing packages of the builds of ``package_ids``, keyed like package_row:
    derived from the rows stored (packages of the same build whose name ends in -debugsource),
    so no import has to record anything more. Ordered by NVRA."""
    ids = sorted(set(package_ids))
    if not ids:
        return []
    alias = lookup_alias()
    rows = []
    for chunk in _chunks(ids, CHUNK):
        size = next(n for n in IN_SIZES if n >= len(chunk))
        sql, tail = _source_sql(alias, size)
        padded = [*chunk, *[chunk[0]] * (size - len(chunk))]  # repeats match nothing new
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, [*padded, *tail])
            for values in cursor.fetchall():
                item = dict(zip(SOURCE_FIELDS, values, strict=True))
                row = {f"package__{k}": v for k, v in item.items() if k != "id"}
                row["package_id"] = item["id"]
                rows.append(row)
    if len(ids) > CHUNK:  # each chunk is in NVRA order; a package may come twice
        rows = sorted({r["package_id"]: r for r in rows}.values(),
                      key=lambda r: r["package__nvra"])
    return rows


@failover
def package_rows(nvra: str) -> tuple[Row | None, list[Row]]:
    """A package (see package_row) and its ELF rows in path order."""
    package = Package.objects.filter(nvra=nvra).values("id", "name").first()
    if package is None:
        return None, []
    rows: list[Row] = []
    for where in package_elves(package["id"], package["name"]):
        rows += _values(ElfFile.objects.filter(where).values(*MATCH_FIELDS))
    if rows:
        rows.sort(key=lambda r: r["path"])
        return rows[0], rows
    # A package without ELF files with build-ids is still known: say so rather than 404.
    return package_row(nvra), []


@failover
def builds_of(name: str) -> list[Row]:
    """The builds named ``name`` or producing a binary package named ``name``, each with the
    NVRAs of its packages; ordered by version text then import order."""
    ids = set(Build.objects.filter(name=name).values_list("id", flat=True))
    ids.update(Package.objects.filter(name=name).values_list("build_id", flat=True))
    if not ids:
        return []
    ordered = Build.objects.filter(id__in=ids).order_by("version", "release", "id")
    builds = list(ordered.values("id", *BUILD_FIELDS))
    nvras: dict[int, list[str]] = {}
    for build_id, nvra in (
        Package.objects.filter(build_id__in=ids).order_by("nvra").values_list("build_id", "nvra")
    ):
        nvras.setdefault(build_id, []).append(nvra)
    for build in builds:
        build["packages"] = nvras.get(build.pop("id"), [])
    return builds


@failover
def stats() -> dict[str, Any]:
    """Totals from the counters the importer keeps (counters.py): a few rows, not a scan; and
    the newest import run of each source."""
    return counters.stats(lookup_alias()) | {"imports": last_imports()}


MAX_IMPORT_SOURCES = 50


@failover
def last_imports() -> list[Row]:
    """The newest import run of each source (directory, repository), newest first."""
    latest = ImportRun.objects.values("source").annotate(last=Max("id")).values("last")
    runs = ImportRun.objects.filter(id__in=latest).order_by("-started_at", "-id")
    return [
        {
            "source": r.source, "kind": r.kind, "status": r.status,
            "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "new": r.new, "known": r.known, "failed": r.failed, "bytes": r.bytes_read,
            "seconds": r.seconds,
        }
        for r in runs[:MAX_IMPORT_SOURCES]
    ]


def readiness() -> tuple[bool, dict[str, Any]]:
    """The database the web reads from is reachable and has every migration applied (the web
    never migrates: the importer's ``darkserver migrate`` does). With read replicas configured,
    every database is listed with its state and lag, and which one answers reads."""
    parts: dict[str, Any] = {"database": "ok", "migrations": "ok"}
    alias = replicas.read_alias()
    if replicas.replicas():
        parts["reading_from"] = alias
        primary_ok, primary_state = _reachable(DEFAULT_DB_ALIAS)
        parts["databases"] = {
            DEFAULT_DB_ALIAS: {"role": "primary", "host": replicas.host(DEFAULT_DB_ALIAS),
                               "status": primary_state, "lag_seconds": 0.0 if primary_ok else None},
            **replicas.describe(),
        }
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        executor = MigrationExecutor(connections[alias])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:  # a probe asks every few seconds: one line, no traceback
        log.warning("readiness: database %s unreachable: %s", alias, exc)
        parts.update(database="unreachable", migrations="unknown")
        return False, parts
    if plan:
        pending = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan)
        parts["migrations"] = f"not applied: {pending}"
        return False, parts
    return True, parts


def _reachable(alias: str) -> tuple[bool, str]:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        connections[alias].close()
        return False, f"unreachable: {' '.join(str(exc).split())}"
    return True, "ok"
