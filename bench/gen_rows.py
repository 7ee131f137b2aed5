"""Fill a Darkserver database with generated rows shaped like a real distribution's.

The shape: package names ``bench<m>``, each built VERSIONS times (``1.0`` .. ``1.7``); a name has
``files(m)`` ELF files, 1 to 2,000 (heavy-tailed: a quarter have one, the median four, a few
thousand names the maximum), installed at the same paths by every build; each build has the
binary package and its ``-debuginfo`` package holding every file's debug file at its
``/usr/lib/debug/.build-id/xx/rest.debug`` path, so every build-id is in two packages.

Deterministic: ELF file ``k`` (1..rows/2) has build-id ``sha1(str(k))`` (20 bytes); ELF rows
``2k-1`` (binary) and ``2k`` (debug) are its two rows, so ``build_id(n)`` and ``row(n, rows)``
tell the benchmark what a lookup must answer without asking the database.

The rows are written in the ELF table's primary-key order (build-id first): generated into 256
files by the first byte of the build-id, each sorted and loaded (MariaDB: LOAD DATA LOCAL INFILE;
SQLite: executemany) in turn. The ELF table's secondary index (and on MariaDB its foreign key)
are dropped for the load and recreated with the migration's definitions afterwards; the script
checks that the schema text ends identical. On MariaDB the schema is sql/createtable.sql (equal
to the migrations, tests/test_createtable.py) and nothing is written to the binary log
(``SET sql_log_bin = 0``): the replica on :3307 receives none of it. The statistics counters are
written from the known totals (a recount of 10^8 rows takes minutes). ``--import-order`` loads
the ELF rows package after package with the secondary index in place instead, as imports write
them: the size of a table grown by imports rather than bulk-loaded (docs/BENCHMARKS.md).

    python bench/gen_rows.py --backend sqlite|mariadb [--rows N] [--database NAME] [--force]
        [--import-order]
"""

from __future__ import annotations

import argparse
import bisect
import functools
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DARKSERVER = ROOT / ".venv" / "bin" / "darkserver"
DDL = ROOT / "sql" / "createtable.sql"

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
# BENCH_MARIADB_DATABASE: another database name (a pre-generated one, or one of a helper's own).
# Its rows are written with sql_log_bin = 0 (_mysql): the replica never receives them.
DATABASE = os.environ.get("BENCH_MARIADB_DATABASE", "darkserver_bench")
MARIADB_URL = f"mysql://root@127.0.0.1:3306/{DATABASE}"
BUFFER_POOL = 4 * 1024**3  # the benchmark raises innodb_buffer_pool_size to this (not persisted)
EPOCH = "2026-01-01 00:00:00"

VERSIONS = 8  # builds per package name
MAX_FILES = 2000
MATCHES_PER_ID = 2  # the binary package and its -debuginfo
TEMPLATE_ID = 1  # the lookup_path row of "/usr/lib/debug/.build-id/\0.debug"
TEMPLATE = "/usr/lib/debug/.build-id/\0.debug"
BUCKETS = 256
ELF_INDEX = "elf_path_package_idx"


def files(m: int) -> int:
    """ELF files of package name ``m``: P(more than x) is about 4 / (x + 4), at most 2,000."""
    u = (int.from_bytes(hashlib.sha1(b"f%d" % m).digest()[:8], "big") + 1) / 2**64
    return min(MAX_FILES, 1 + int(4 * (1 / u - 1)))


@functools.lru_cache(maxsize=4)
def layout(rows: int) -> tuple[list[int], list[int]]:
    """(files before name m, for m = 1..M+1) counting every build, and files(m) per name: the
    names whose builds hold rows/2 ELF files (the last name's last build may be cut short)."""
    total = rows // 2
    before, sizes = [0], [0]
    m = 0
    while before[-1] < total:
        m += 1
        sizes.append(files(m))
        before.append(before[-1] + VERSIONS * sizes[-1])
    return before, sizes


def sizes(rows: int) -> tuple[int, int, int]:
    """(builds, packages, binary paths) of a table of ``rows`` ELF rows."""
    before, per_name = layout(rows)
    names = len(before) - 1
    total = rows // 2
    last_builds = -(-(total - before[names - 1]) // per_name[names])
    builds = (names - 1) * VERSIONS + last_builds
    return builds, 2 * builds, sum(per_name)


def locate(k: int, rows: int) -> tuple[int, int, int]:
    """ELF file ``k`` (1-based) is file ``i`` of build ``j`` of name ``m``."""
    before, per_name = layout(rows)
    m = bisect.bisect_right(before, k - 1)
    offset = k - 1 - before[m - 1]
    return m, offset // per_name[m], offset % per_name[m]


def build_id(n: int) -> bytes:
    """The build-id of ELF row ``n`` (rows 2k-1 and 2k share file k's)."""
    return hashlib.sha1(str((n + 1) // 2).encode()).digest()


def binary_path(m: int, i: int) -> str:
    kind = i % 8
    if kind < 2:
        return f"/usr/bin/bench{m}-tool{i}"
    if kind < 6:
        return f"/usr/lib64/libbench{m}_{i}.so.{m % 7}"
    if kind == 6:
        return f"/usr/lib64/bench{m}/plugins/plugin{i}.so"
    return f"/usr/libexec/bench{m}/helper{i}"


def nvra(m: int, j: int, debug: bool = False) -> str:
    return f"bench{m}{'-debuginfo' if debug else ''}-1.{j}-{m}.fc40.x86_64"


def row(n: int, rows: int) -> dict[str, Any]:
    """What the service must answer first for ELF row ``n``'s build-id: the binary row (its
    package sorts before the -debuginfo one)."""
    m, j, i = locate((n + 1) // 2, rows)
    path = binary_path(m, i)
    return {"buildid": build_id(n).hex(), "elf": path, "rpm": nvra(m, j),
            "debug": False, "elf_type": 2 if path.startswith("/usr/bin/") else 3}


def _migrate(url: str) -> None:
    env = dict(os.environ, DARKSERVER_DATABASE_URL=url, DARKSERVER_ROLE="importer")
    subprocess.run([str(DARKSERVER), "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def _log(msg: str) -> None:
    print(f"[gen_rows] {msg}", file=sys.stderr, flush=True)


# --- the rows, as tab-separated lines ----------------------------------------------------------


def _path_key_hex(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:32]


def build_lines(rows: int) -> Iterator[str]:
    """lookup_build: id, instance, koji_build_id, name, version, release, distro."""
    for b in range(1, sizes(rows)[0] + 1):
        m, j = (b - 1) // VERSIONS + 1, (b - 1) % VERSIONS
        yield f"{b}\tprimary\t{b}\tbench{m}\t1.{j}\t{m}.fc40\tfc40\n"


def package_lines(rows: int) -> Iterator[str]:
    """lookup_package: id, build_id, kind, nvra, name, version, release, arch, filename, size,
    sha256, sigmd5, url, koji_rpm_id, elf_files, without_build_id, imported_at."""
    before, per_name = layout(rows)
    total = rows // 2
    for b in range(1, sizes(rows)[0] + 1):
        m, j = (b - 1) // VERSIONS + 1, (b - 1) % VERSIONS
        count = min(per_name[m], total - before[m - 1] - j * per_name[m])
        for debug in (False, True):
            p = 2 * b - (not debug)
            nv = nvra(m, j, debug)
            name = f"bench{m}-debuginfo" if debug else f"bench{m}"
            digest = hashlib.sha256(nv.encode()).hexdigest()
            url = f"https://kojipkgs.example.org/packages/bench{m}/1.{j}/{m}.fc40/x86_64/{nv}.rpm"
            yield (f"{p}\t{b}\trpm\t{nv}\t{name}\t1.{j}\t{m}.fc40\tx86_64\t{nv}.rpm\t"
                   f"{1000000 + p}\t{digest}\t{digest[:32]}\t{url}\t{p}\t{count}\t0\t{EPOCH}\n")


def path_lines(rows: int) -> Iterator[str]:
    """lookup_path: id, scope, path, path_key (hex); the template first."""
    _, per_name = layout(rows)
    yield f"{TEMPLATE_ID}\t\t{TEMPLATE.replace(chr(0), chr(92) + '0')}\t{_path_key_hex(TEMPLATE)}\n"
    pid = TEMPLATE_ID
    for m in range(1, len(per_name)):
        for i in range(per_name[m]):
            pid += 1
            path = binary_path(m, i)
            yield f"{pid}\tbench{m}\t{path}\t{_path_key_hex(path)}\n"


def elf_buckets(rows: int, workdir: Path, buckets: int = BUCKETS) -> list[Path]:
    """lookup_elffile: build-id (hex), package_id, path_id, elf_type, debug; into ``buckets``
    files by the build-id's first byte (each then sorted: the primary-key order), in the order
    packages are generated within each."""
    before, per_name = layout(rows)
    total = rows // 2
    names = [workdir / f"elf-{b:02x}.tsv" for b in range(buckets)]
    outs = [open(p, "w", buffering=1 << 20) for p in names]  # noqa: SIM115
    try:
        k = 0
        path_base = TEMPLATE_ID + 1
        started = time.perf_counter()
        for m in range(1, len(per_name)):
            count = per_name[m]
            for j in range(VERSIONS):
                b = (m - 1) * VERSIONS + j + 1
                binary, debug = 2 * b - 1, 2 * b
                for i in range(count):
                    k += 1
                    if k > total:
                        break
                    h = hashlib.sha1(str(k).encode()).hexdigest()
                    elf_type = 2 if i % 8 < 2 else 3
                    outs[int(h[:2], 16) * buckets // BUCKETS].write(
                        f"{h}\t{binary}\t{path_base + i}\t{elf_type}\t0\n"
                        f"{h}\t{debug}\t{TEMPLATE_ID}\t{elf_type}\t1\n")
                if k % 5_000_000 < count:
                    _log(f"generated {2 * min(k, total):,} rows, "
                         f"{time.perf_counter() - started:.0f} s")
            path_base += count
    finally:
        for f in outs:
            f.close()
    return names


def sorted_bucket(path: Path) -> list[str]:
    lines = path.read_text().splitlines(keepends=True)
    lines.sort(key=lambda line: line[:40])  # stable: the binary row stays before the debug one
    return lines


def counter_values(rows: int) -> dict[str, int]:
    builds, packages, _ = sizes(rows)
    return {"builds": builds, "packages": packages, "elf_files": rows, "build_ids": rows // 2,
            "without_build_id": 0, "distro:fc40": packages}


# --- SQLite ------------------------------------------------------------------------------------


def sqlite_path(rows: int) -> Path:
    return RESULTS / f"lookup-{rows}.sqlite3"


def sqlite_url(rows: int) -> str:
    return f"sqlite:///{sqlite_path(rows)}"


def _sqlite_ready(path: Path, rows: int) -> bool:
    if not path.exists():
        return False
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            count = con.execute("SELECT value FROM lookup_counter WHERE name = 'elf_files'"
                                ).fetchone()
            last = con.execute("SELECT COUNT(*) FROM lookup_elffile WHERE build_id = ?",
                               (build_id(rows),)).fetchone()[0]
            idx = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                              f"name = '{ELF_INDEX}'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return count is not None and count[0] == rows and last == MATCHES_PER_ID and idx == 1


def _tsv(lines: Iterator[str]) -> Iterator[list[str]]:
    for line in lines:
        yield line.rstrip("\n").split("\t")


def generate_sqlite(rows: int) -> float:
    path = sqlite_path(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    _migrate(f"sqlite:///{path}")
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")
    for pragma in ("synchronous=OFF", "cache_size=-2000000", "temp_store=MEMORY",
                   "locking_mode=EXCLUSIVE"):
        con.execute(f"PRAGMA {pragma}")
    before = _sqlite_schema(con)
    index_sql = dict(before["index_sql"])[ELF_INDEX]
    con.execute("BEGIN")
    con.execute(f'DROP INDEX "{ELF_INDEX}"')
    con.executemany("INSERT INTO lookup_build (id, instance, koji_build_id, name, epoch, version, "
                    "release, distro) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)", _tsv(build_lines(rows)))
    con.executemany(
        "INSERT INTO lookup_package (id, build_id, kind, nvra, name, epoch, version, release, "
        "arch, filename, size, sha256, sigmd5, url, koji_rpm_id, elf_files, without_build_id, "
        "imported_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _tsv(package_lines(rows)))
    con.executemany(
        "INSERT INTO lookup_path (id, scope, path, path_key) VALUES (?, ?, ?, ?)",
        ((int(i), s.encode(), p.replace("\\0", "\0"), bytes.fromhex(k))
         for i, s, p, k in _tsv(path_lines(rows))))
    con.executemany("INSERT INTO lookup_counter (name, value) VALUES (?, ?)",
                    counter_values(rows).items())
    con.execute("COMMIT")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gen-rows-", dir=RESULTS) as work:
        for n, bucket in enumerate(elf_buckets(rows, Path(work))):
            con.execute("BEGIN")
            con.executemany(
                "INSERT INTO lookup_elffile (build_id, package_id, path_id, elf_type, machine, "
                "elf_class, big_endian, debug, package_note) VALUES (?, ?, ?, ?, 62, 64, 0, ?, "
                "NULL)", ((bytes.fromhex(h), int(p), int(q), int(t), int(d))
                          for h, p, q, t, d in _tsv(iter(sorted_bucket(bucket)))))
            con.execute("COMMIT")
            bucket.unlink()
            if n % 32 == 31:
                _log(f"sqlite: {n + 1}/{BUCKETS} buckets, {time.perf_counter() - started:.0f} s")
    t = time.perf_counter()
    con.execute(index_sql)
    _log(f"sqlite: index {ELF_INDEX} {time.perf_counter() - t:.0f} s")
    con.execute("ANALYZE")
    after = _sqlite_schema(con)
    if after["all"] != before["all"]:
        raise SystemExit(f"sqlite schema changed:\n{before}\n{after}")
    con.execute("PRAGMA locking_mode=NORMAL")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    return time.perf_counter() - started


def _sqlite_schema(con: sqlite3.Connection) -> dict[str, Any]:
    items = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                        "AND name NOT LIKE 'sqlite_stat%' ORDER BY type, name").fetchall()
    return {"all": items, "index_sql": [(r[1], r[3]) for r in items
                                        if r[0] == "index" and r[2] == "lookup_elffile"]}


# --- MariaDB -----------------------------------------------------------------------------------


def mariadb_url(database: str = DATABASE) -> str:
    return f"mysql://root@127.0.0.1:3306/{database}"


def _mysql(database: str | None = DATABASE) -> Any:
    import MySQLdb  # noqa: PLC0415  (only the MariaDB path needs the driver)

    kw = dict(MARIADB, charset="utf8mb4", autocommit=True, local_infile=1)
    if database:
        kw["database"] = database
    con = MySQLdb.connect(**kw)
    # Nothing of the generated database goes to the binary log: the replica stays out of it.
    con.cursor().execute("SET SESSION sql_log_bin = 0")
    return con


def raise_buffer_pool() -> int:
    """innodb_buffer_pool_size to BUFFER_POOL when smaller (runtime only); returns the size."""
    con = _mysql(None)
    cur = con.cursor()
    cur.execute("SELECT @@innodb_buffer_pool_size")
    size = int(cur.fetchone()[0])
    if size < BUFFER_POOL:
        cur.execute(f"SET GLOBAL innodb_buffer_pool_size = {BUFFER_POOL}")
        for _ in range(120):  # resizing is done in the background
            cur.execute("SELECT @@innodb_buffer_pool_size")
            size = int(cur.fetchone()[0])
            cur.execute("SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'")
            status = (cur.fetchone() or ("", ""))[1]
            if size >= BUFFER_POOL and ("complete" in status.lower() or not status):
                break
            time.sleep(0.5)
    con.close()
    return size


def _mariadb_ready(rows: int, database: str) -> bool:
    try:
        con = _mysql(database)
    except Exception:  # noqa: BLE001  (no database yet)
        return False
    try:
        cur = con.cursor()
        cur.execute("SELECT value FROM lookup_counter WHERE name = 'elf_files'")
        count = cur.fetchone()
        cur.execute("SELECT COUNT(*) FROM lookup_elffile WHERE build_id = %s", (build_id(rows),))
        last = cur.fetchone()[0]
        cur.execute("SHOW INDEX FROM lookup_elffile")
        idx = {r[2] for r in cur.fetchall()}
    except Exception:  # noqa: BLE001  (no tables, half-made database)
        return False
    finally:
        con.close()
    return count is not None and count[0] == rows and last == MATCHES_PER_ID and ELF_INDEX in idx


def _show_create(cur: Any, table: str) -> str:
    cur.execute(f"SHOW CREATE TABLE {table}")
    return re.sub(r" AUTO_INCREMENT=\d+", "", cur.fetchone()[1])


def apply_ddl(cur: Any) -> None:
    """sql/createtable.sql, statement by statement (comments are whole lines)."""
    lines = [x for x in DDL.read_text().splitlines() if not x.lstrip().startswith("--")]
    for statement in "\n".join(lines).split(";\n"):
        if statement.strip():
            cur.execute(statement)


def _load(cur: Any, table: str, lines: Iterator[str] | list[str], columns: str,
          workdir: Path) -> None:
    path = workdir / f"{table}.tsv"
    with open(path, "w") as out:
        out.writelines(lines)
    cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} "
                f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' {columns}")
    path.unlink()


def generate_mariadb(rows: int, database: str = DATABASE, import_order: bool = False) -> float:
    """``import_order``: the ELF rows go in one package after the other, with the secondary
    index in place, as imports write them (pages end part full), instead of in key order."""
    raise_buffer_pool()
    con = _mysql(None)
    cur = con.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {database}")
    cur.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    con.close()
    started = time.perf_counter()
    con = _mysql(database)
    cur = con.cursor()
    apply_ddl(cur)
    tables = ("lookup_build", "lookup_package", "lookup_path", "lookup_elffile")
    before = {t: _show_create(cur, t) for t in tables}
    fk = re.search(r"CONSTRAINT `(\w+)` FOREIGN KEY \(`path_id`\)", before["lookup_elffile"])
    if fk is None:
        raise SystemExit(f"no path foreign key in {before['lookup_elffile']}")
    cur.execute("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit")
    flush = cur.fetchone()[0]
    cur.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
    cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
    try:
        cur.execute(f"ALTER TABLE lookup_elffile DROP FOREIGN KEY {fk.group(1)}"
                    + ("" if import_order else f", DROP INDEX {ELF_INDEX}"))
        RESULTS.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="gen-rows-", dir=RESULTS) as tmp:
            work = Path(tmp)
            _load(cur, "lookup_build", build_lines(rows),
                  "(id, instance, koji_build_id, name, version, `release`, distro)", work)
            _load(cur, "lookup_package", package_lines(rows),
                  "(id, build_id, kind, nvra, name, version, `release`, arch, filename, size, "
                  "sha256, sigmd5, url, koji_rpm_id, elf_files, without_build_id, imported_at)",
                  work)
            _load(cur, "lookup_path", path_lines(rows),
                  "(id, scope, path, @k) SET path_key = UNHEX(@k)", work)
            cur.executemany("INSERT INTO lookup_counter (name, value) VALUES (%s, %s)",
                            list(counter_values(rows).items()))
            _log(f"mariadb: builds, packages, paths {time.perf_counter() - started:.0f} s")
            for n, bucket in enumerate(elf_buckets(rows, work, 1 if import_order else BUCKETS)):
                if n == 0:
                    _log(f"mariadb: ELF rows generated {time.perf_counter() - started:.0f} s")
                lines = bucket.read_text().splitlines(True) if import_order else \
                    sorted_bucket(bucket)
                _load(cur, "lookup_elffile", lines,
                      "(@b, package_id, path_id, elf_type, debug) SET build_id = UNHEX(@b), "
                      "machine = 62, elf_class = 64, big_endian = 0", work)
                bucket.unlink()
                if n % 16 == 15:
                    _log(f"mariadb: {n + 1}/{BUCKETS} buckets, "
                         f"{time.perf_counter() - started:.0f} s")
        t = time.perf_counter()
        if not import_order:
            cur.execute(f"ALTER TABLE lookup_elffile ADD KEY {ELF_INDEX} (path_id, package_id)")
        cur.execute(f"ALTER TABLE lookup_elffile ADD CONSTRAINT {fk.group(1)} FOREIGN KEY "
                    "(path_id) REFERENCES lookup_path (id)")
        _log(f"mariadb: index {time.perf_counter() - t:.0f} s")
        cur.execute(f"ANALYZE TABLE {', '.join(tables)}")
        cur.fetchall()
    finally:
        cur.execute(f"SET GLOBAL innodb_flush_log_at_trx_commit = {int(flush)}")
    after = {t: _show_create(cur, t) for t in before}
    con.close()
    if after != before:
        raise SystemExit(f"mariadb schema changed:\n{before}\n{after}")
    return time.perf_counter() - started


# --- entry points ------------------------------------------------------------------------------


def ensure(backend: str, rows: int, force: bool = False, database: str = DATABASE,
           import_order: bool = False) -> tuple[str, float | None]:
    """The database URL holding ``rows`` generated rows, and the generation seconds (None when
    an existing database was reused)."""
    if rows % 2:
        raise ValueError("rows must be even: every ELF file has two rows")
    if backend == "sqlite":
        if not force and _sqlite_ready(sqlite_path(rows), rows):
            return sqlite_url(rows), None
        return sqlite_url(rows), generate_sqlite(rows)
    if backend == "mariadb":
        if not force and _mariadb_ready(rows, database):
            return mariadb_url(database), None
        return mariadb_url(database), generate_mariadb(rows, database, import_order)
    raise ValueError(backend)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "mariadb"), required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--database", default=DATABASE, help="MariaDB database (default %(default)s)")
    ap.add_argument("--force", action="store_true", help="regenerate even if the rows are there")
    ap.add_argument("--import-order", action="store_true",
                    help="MariaDB: load the ELF rows package after package with the index in "
                    "place, as imports write them, instead of in primary-key order")
    args = ap.parse_args()
    url, seconds = ensure(args.backend, args.rows, args.force, args.database, args.import_order)
    took = "reused" if seconds is None else f"generated in {seconds:.0f} s"
    builds, packages, paths = sizes(args.rows)
    print(f"{args.backend}: {args.rows:,} ELF rows ({builds:,} builds, {packages:,} packages, "
          f"{paths + 1:,} paths) at {url} ({took})")


if __name__ == "__main__":
    main()
