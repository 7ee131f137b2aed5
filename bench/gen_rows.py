"""Fill a Darkserver database with generated rows for the lookup benchmark.

Deterministic: ELF row ``n`` (1..rows) has build-id ``sha1(str(n))`` (20 bytes), belongs to
package ``(n - 1) % packages + 1``, and so on (see ``row``), so the benchmark can recompute which
ids exist and what a lookup must answer without asking the database.

The schema comes from ``darkserver migrate``; the ELF table's secondary indexes, unique constraint
(and on MariaDB its foreign key, whose index the unique constraint is) are dropped for the bulk
insert and recreated with the migration's names and definitions afterwards; the script checks
that the schema text ends identical to the migrated one.

    python bench/gen_rows.py --backend sqlite|mariadb [--rows N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DARKSERVER = ROOT / ".venv" / "bin" / "darkserver"

# BENCH_MARIADB_DATABASE: another database name (a pre-generated one, or one of a helper's own).
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "",
           "database": os.environ.get("BENCH_MARIADB_DATABASE", "darkserver_bench")}
MARIADB_URL = f"mysql://root@127.0.0.1:3306/{MARIADB['database']}"
BUFFER_POOL = 4 * 1024**3  # the benchmark raises innodb_buffer_pool_size to this (not persisted)
CHUNK = 1_000_000
EPOCH = "2026-01-01 00:00:00"


def sizes(rows: int) -> tuple[int, int]:
    """(builds, packages) for a table of ``rows`` ELF rows: 50 per package, 4 packages a build,
    at most 200,000 packages and 50,000 builds (the 10^7-row shape)."""
    packages = max(1, min(200_000, rows // 50))
    return max(1, packages // 4), packages


def build_id(n: int) -> bytes:
    return hashlib.sha1(str(n).encode()).digest()


def elf_path(n: int) -> str:
    if n % 5 == 0:
        return f"/usr/lib/debug/usr/lib64/libbench{n}.so.debug"
    return f"/usr/lib64/libbench{n}.so.1"


def package_of(n: int, rows: int) -> int:
    return (n - 1) % sizes(rows)[1] + 1


def build_of(p: int, rows: int) -> int:
    return (p - 1) % sizes(rows)[0] + 1


def nvra(p: int, rows: int) -> str:
    b = build_of(p, rows)
    return f"benchpkg{p}-1.{b % 100}-{b}.fc40.x86_64"


def row(n: int, rows: int) -> dict[str, Any]:
    """What the service must answer for ELF row ``n``."""
    p = package_of(n, rows)
    return {"buildid": build_id(n).hex(), "elf": elf_path(n), "rpm": nvra(p, rows),
            "debug": n % 5 == 0, "elf_type": 2 if n % 7 == 0 else 3}


# The same definitions in SQL (MariaDB: CONCAT/IF on seq; SQLite: || and CASE on n).
_PATH_MARIADB = ("IF(seq % 5 = 0, CONCAT('/usr/lib/debug/usr/lib64/libbench', seq, '.so.debug'), "
                 "CONCAT('/usr/lib64/libbench', seq, '.so.1'))")
_PATH_SQLITE = ("CASE WHEN n % 5 = 0 THEN '/usr/lib/debug/usr/lib64/libbench' || n || '.so.debug' "
                "ELSE '/usr/lib64/libbench' || n || '.so.1' END")


def _migrate(url: str) -> None:
    env = dict(os.environ, DARKSERVER_DATABASE_URL=url, DARKSERVER_ROLE="importer")
    subprocess.run([str(DARKSERVER), "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def _log(msg: str) -> None:
    print(f"[gen_rows] {msg}", file=sys.stderr, flush=True)


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
            top = con.execute("SELECT MAX(id) FROM lookup_elffile").fetchone()[0]
            last = con.execute("SELECT build_id FROM lookup_elffile WHERE id = ?",
                               (rows,)).fetchone()
            npk = con.execute("SELECT MAX(id) FROM lookup_package").fetchone()[0]
            idx = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                              "tbl_name = 'lookup_elffile'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return top == rows and last is not None and bytes(last[0]) == build_id(rows) \
        and npk == sizes(rows)[1] and idx >= 4


def generate_sqlite(rows: int) -> float:
    path = sqlite_path(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    _migrate(f"sqlite:///{path}")
    nbuilds, npackages = sizes(rows)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")
    for pragma in ("synchronous=OFF", "cache_size=-2000000", "temp_store=MEMORY", "threads=2",
                   "locking_mode=EXCLUSIVE"):
        con.execute(f"PRAGMA {pragma}")
    con.create_function("sha1b", 1, lambda n: hashlib.sha1(str(n).encode()).digest(),
                        deterministic=True)
    con.create_function("pkey", 1, lambda p: hashlib.sha256(p.encode()).digest()[:16],
                        deterministic=True)
    before = _sqlite_schema(con)
    indexes = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'lookup_elffile' "
        "AND sql IS NOT NULL")]
    con.execute("BEGIN")
    for name in indexes:
        con.execute(f'DROP INDEX "{name}"')
    seq = "WITH RECURSIVE s(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM s WHERE n < ?) "
    con.execute(
        seq + "INSERT INTO lookup_build (id, instance, koji_build_id, name, epoch, version, "
        "release, distro) SELECT n, 'primary', n, 'bench' || n, NULL, '1.' || (n % 100), "
        "n || '.fc40', 'fc40' FROM s", (1, nbuilds))
    b = f"((n - 1) % {nbuilds} + 1)"
    con.execute(
        seq + "INSERT INTO lookup_package (id, build_id, kind, nvra, name, epoch, version, "
        "release, arch, filename, size, sha256, sigmd5, url, koji_rpm_id, elf_files, "
        "without_build_id, imported_at) SELECT n, b, 'rpm', nv, 'benchpkg' || n, NULL, "
        "'1.' || (b % 100), b || '.fc40', 'x86_64', nv || '.rpm', 1000000 + n, '', '', "
        "'https://kojipkgs.example.org/packages/bench' || b || '/1.' || (b % 100) || '/' || b "
        f"|| '.fc40/x86_64/' || nv || '.rpm', n, 50, 0, '{EPOCH}' FROM (SELECT n, {b} AS b, "
        f"'benchpkg' || n || '-1.' || ({b} % 100) || '-' || {b} || '.fc40.x86_64' AS nv FROM s)",
        (1, npackages))
    con.execute("COMMIT")
    for start in range(1, rows + 1, CHUNK):
        end = min(rows, start + CHUNK - 1)
        con.execute("BEGIN")
        con.execute(
            seq + "INSERT INTO lookup_elffile (id, build_id, path, path_key, elf_type, machine, "
            "elf_class, big_endian, debug, package_note, package_id) SELECT n, sha1b(n), p, "
            "pkey(p), CASE WHEN n % 7 = 0 THEN 2 ELSE 3 END, 62, 64, 0, n % 5 = 0, NULL, "
            f"(n - 1) % {npackages} + 1 "
            f"FROM (SELECT n, {_PATH_SQLITE} AS p FROM s)", (start, end))
        con.execute("COMMIT")
        _log(f"sqlite: {end:,} rows, {time.perf_counter() - started:.0f} s")
    for name, sql in before["index_sql"]:
        if name in indexes:
            t = time.perf_counter()
            con.execute(sql)
            _log(f"sqlite: index {name} {time.perf_counter() - t:.0f} s")
    after = _sqlite_schema(con)
    if after != before:
        raise SystemExit(f"sqlite schema changed:\n{before}\n{after}")
    con.execute("PRAGMA locking_mode=NORMAL")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    return time.perf_counter() - started


def _sqlite_schema(con: sqlite3.Connection) -> dict[str, Any]:
    items = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                        "ORDER BY type, name").fetchall()
    return {"all": items, "index_sql": [(r[1], r[3]) for r in items
                                        if r[0] == "index" and r[2] == "lookup_elffile"]}


# --- MariaDB -----------------------------------------------------------------------------------


def _mysql(database: str | None = MARIADB["database"]) -> Any:
    import MySQLdb  # noqa: PLC0415  (only the MariaDB path needs the driver)

    kw = dict(host=MARIADB["host"], port=MARIADB["port"], user=MARIADB["user"],
              password=MARIADB["password"], charset="utf8mb4", autocommit=True)
    if database:
        kw["database"] = database
    return MySQLdb.connect(**kw)


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


def _mariadb_ready(rows: int) -> bool:
    try:
        con = _mysql()
    except Exception:  # noqa: BLE001  (no database yet)
        return False
    try:
        cur = con.cursor()
        cur.execute("SELECT MAX(id) FROM lookup_elffile")
        top = cur.fetchone()[0]
        cur.execute("SELECT build_id FROM lookup_elffile WHERE id = %s", (rows,))
        last = cur.fetchone()
        cur.execute("SELECT MAX(id) FROM lookup_package")
        npk = cur.fetchone()[0]
        cur.execute("SHOW INDEX FROM lookup_elffile")
        idx = {r[2] for r in cur.fetchall()}
    except Exception:  # noqa: BLE001  (no tables, half-made database)
        return False
    finally:
        con.close()
    return top == rows and last is not None and bytes(last[0]) == build_id(rows) \
        and npk == sizes(rows)[1] and {"elf_build_id_idx", "elf_package_path_unique"} <= idx


def _show_create(cur: Any, table: str) -> str:
    cur.execute(f"SHOW CREATE TABLE {table}")
    return re.sub(r" AUTO_INCREMENT=\d+", "", cur.fetchone()[1])


def generate_mariadb(rows: int) -> float:
    raise_buffer_pool()
    db = MARIADB["database"]
    con = _mysql(None)
    cur = con.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {db}")
    cur.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
    con.close()
    started = time.perf_counter()
    _migrate(MARIADB_URL)
    nbuilds, npackages = sizes(rows)
    con = _mysql()
    cur = con.cursor()
    before = {t: _show_create(cur, t) for t in ("lookup_build", "lookup_package", "lookup_elffile")}
    cur.execute("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit")
    flush = cur.fetchone()[0]
    cur.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
    cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
    fk = "lookup_elffile_package_id_4c3a46d0_fk_lookup_package_id"
    m = re.search(r"CONSTRAINT `(\w+)` FOREIGN KEY \(`package_id`\) REFERENCES `lookup_package` "
                  r"\(`id`\)", before["lookup_elffile"])
    if m:
        fk = m.group(1)
    try:
        cur.execute(f"ALTER TABLE lookup_elffile DROP FOREIGN KEY {fk}, "
                    "DROP INDEX elf_package_path_unique, DROP INDEX elf_build_id_idx, "
                    "DROP INDEX elf_path_key_idx")
        cur.execute(
            "INSERT INTO lookup_build (id, instance, koji_build_id, name, epoch, version, "
            "`release`, distro) SELECT seq, 'primary', seq, CONCAT('bench', seq), NULL, "
            f"CONCAT('1.', seq % 100), CONCAT(seq, '.fc40'), 'fc40' FROM seq_1_to_{nbuilds}")
        b = f"((seq - 1) % {nbuilds} + 1)"
        cur.execute(
            "INSERT INTO lookup_package (id, build_id, kind, nvra, name, epoch, version, "
            "`release`, arch, filename, size, sha256, sigmd5, url, koji_rpm_id, elf_files, "
            "without_build_id, imported_at) SELECT seq, b, 'rpm', nv, CONCAT('benchpkg', seq), "
            "NULL, CONCAT('1.', b % 100), CONCAT(b, '.fc40'), 'x86_64', CONCAT(nv, '.rpm'), "
            "1000000 + seq, '', '', CONCAT('https://kojipkgs.example.org/packages/bench', b, "
            "'/1.', b % 100, '/', b, '.fc40/x86_64/', nv, '.rpm'), seq, 50, 0, "
            f"'{EPOCH}' FROM (SELECT seq, {b} AS b, CONCAT('benchpkg', seq, '-1.', {b} % 100, "
            f"'-', {b}, '.fc40.x86_64') AS nv FROM seq_1_to_{npackages}) s")
        for start in range(1, rows + 1, CHUNK):
            end = min(rows, start + CHUNK - 1)
            cur.execute(
                "INSERT INTO lookup_elffile (id, build_id, path, path_key, elf_type, machine, "
                "elf_class, big_endian, debug, package_note, package_id) SELECT n, "
                "UNHEX(SHA1(n)), p, UNHEX(LEFT(SHA2(p, 256), 32)), IF(n % 7 = 0, 2, 3), 62, 64, "
                "0, n % 5 = 0, NULL, "
                f"(n - 1) % {npackages} + 1 FROM (SELECT seq AS n, {_PATH_MARIADB} AS p "
                f"FROM seq_{start}_to_{end}) s")
            _log(f"mariadb: {end:,} rows, {time.perf_counter() - started:.0f} s")
        t = time.perf_counter()
        # The same order as the migration's: unique constraint, build_id, path_key, then the FK.
        cur.execute("ALTER TABLE lookup_elffile "
                    "ADD UNIQUE KEY elf_package_path_unique (package_id, path_key), "
                    "ADD KEY elf_build_id_idx (build_id), ADD KEY elf_path_key_idx (path_key)")
        cur.execute(f"ALTER TABLE lookup_elffile ADD CONSTRAINT {fk} FOREIGN KEY (package_id) "
                    "REFERENCES lookup_package (id)")
        _log(f"mariadb: indexes {time.perf_counter() - t:.0f} s")
        cur.execute("ANALYZE TABLE lookup_build, lookup_package, lookup_elffile")
        cur.fetchall()
    finally:
        cur.execute(f"SET GLOBAL innodb_flush_log_at_trx_commit = {int(flush)}")
    after = {t: _show_create(cur, t) for t in before}
    con.close()
    if after != before:
        raise SystemExit(f"mariadb schema changed:\n{before}\n{after}")
    return time.perf_counter() - started


# --- entry points ------------------------------------------------------------------------------


def ensure(backend: str, rows: int, force: bool = False) -> tuple[str, float | None]:
    """The database URL holding ``rows`` generated rows, and the generation seconds (None when
    an existing database was reused)."""
    if backend == "sqlite":
        if not force and _sqlite_ready(sqlite_path(rows), rows):
            return sqlite_url(rows), None
        return sqlite_url(rows), _recount(sqlite_url(rows), generate_sqlite(rows))
    if backend == "mariadb":
        if not force and _mariadb_ready(rows):
            return MARIADB_URL, None
        return MARIADB_URL, _recount(MARIADB_URL, generate_mariadb(rows))
    raise ValueError(backend)


def _recount(url: str, seconds: float) -> float:
    """The rows went in behind the importer: compute /api/v1/stats's counters from them."""
    started = time.perf_counter()
    subprocess.run([str(DARKSERVER), "recount"], check=True, capture_output=True,
                   env=os.environ | {"DARKSERVER_DATABASE_URL": url, "DARKSERVER_ROLE": "importer"})
    _log(f"counters recounted in {time.perf_counter() - started:.0f} s")
    return seconds + time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "mariadb"), required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--force", action="store_true", help="regenerate even if the rows are there")
    args = ap.parse_args()
    url, seconds = ensure(args.backend, args.rows, args.force)
    took = "reused" if seconds is None else f"generated in {seconds:.0f} s"
    print(f"{args.backend}: {args.rows:,} ELF rows at {url} ({took})")


if __name__ == "__main__":
    main()
