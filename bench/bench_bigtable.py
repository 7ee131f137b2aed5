"""The lookup tables at 10^7 and 10^8 ELF rows on MariaDB: size, statistics, lookups, imports.

For each ``--db NAME:ROWS`` (a database bench/gen_rows.py filled, reused when present):
  * bytes per ELF row: information_schema's data and index length of each lookup table after
    ANALYZE, divided by the ELF rows; the ELF table with the path texts, and every table;
  * the service (conf/gunicorn.conf.py, the default edge worker, 2 workers) on that database:
    GET /api/v1/stats over one keep-alive connection (median and p99 of 200);
    GET /api/v1/buildid/<id> over 4,000 existing ids under ``wrk -t2 -c16 -d10s``;
    POST /api/v1/buildids of 1,000 ids (half existing) under the same wrk settings, and one
    connection at a time (bench_lookup.run_batch: median and p95 of 30);
  * the import rate: 300 generated packages (150 builds: 75 new versions of names already in the
    table, 75 new names; each a binary and a -debuginfo package; 4,884 ELF rows, the debug ones
    at .build-id paths) written one transaction each by the importer's store
    (darkimport/run/store.py) into that database and into an empty one, then removed again
    (store's replace path), so the database stays reusable.
The databases are measured in turn, ``--repeat`` times (alternating), and every run is printed.
``--before`` also copies the first database's rows into the layout before this one (commit
016893c's sql/createtable.sql), prints its size the same way, and times the lookup statement
alone on both (one connection, 1 and 8 ids a query, alternating).
Nothing goes to the binary log (``sql_log_bin = 0``): the replica stays out of it.

    .venv/bin/python bench/bench_bigtable.py --db darkserver_bench_1e7:10000000 \\
        --db darkserver_bench_1e8:100000000 [--repeat 2] [--duration 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_lookup  # noqa: E402
import gen_rows  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = "edge:2"
EMPTY = "darkserver_bench_empty"
TABLES = ("lookup_elffile", "lookup_path", "lookup_package", "lookup_build")
STATS_REQUESTS = 200
IMPORT_BUILDS = 75  # per kind: new versions of stored names, new names


# --- size --------------------------------------------------------------------------------------


def table_bytes(database: str) -> dict[str, int]:
    con = gen_rows._mysql(database)
    cur = con.cursor()
    cur.execute(f"ANALYZE TABLE {', '.join(TABLES)}")
    cur.fetchall()
    cur.execute("SELECT table_name, data_length + index_length FROM information_schema.tables "
                "WHERE table_schema = %s", (database,))
    found = {str(name): int(size) for name, size in cur.fetchall()}
    con.close()
    return found


def size_line(database: str, rows: int) -> str:
    sizes = table_bytes(database)
    per = {t: sizes.get(t, 0) / rows for t in TABLES}
    elf_path = per["lookup_elffile"] + per["lookup_path"]
    return (f"{database}: {rows:,} ELF rows, {sum(sizes.values()) / 1e9:.2f} GB; bytes per ELF "
            f"row: ELF table {per['lookup_elffile']:.1f} + path texts {per['lookup_path']:.1f} "
            f"= {elf_path:.1f}; + packages {per['lookup_package']:.1f} + builds "
            f"{per['lookup_build']:.1f} = {sum(per.values()):.1f} (all tables)")


# The layout before the ELF table was keyed by build-id (sql/createtable.sql of this commit):
# an auto-increment id, the path text and its hash in every row, three secondary indexes.
BEFORE_COMMIT = "016893c"
BEFORE = "darkserver_bench_before"


def before_line(source: str, rows: int) -> str:
    """The rows of ``source`` copied into the layout before (one package after the other, as
    imports write them; the secondary indexes built afterwards, as gen_rows did), measured the
    same way."""
    ddl = subprocess.run(["git", "show", f"{BEFORE_COMMIT}:sql/createtable.sql"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    con = gen_rows._mysql(None)
    cur = con.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {BEFORE}")
    cur.execute(f"CREATE DATABASE {BEFORE} CHARACTER SET utf8mb4")
    cur.execute(f"USE {BEFORE}")
    lines = [x for x in ddl.splitlines() if not x.lstrip().startswith("--")]
    deferred = []
    for statement in "\n".join(lines).split(";\n"):
        if "lookup_elffile" in statement and ("CREATE INDEX" in statement
                                              or "ALTER TABLE" in statement):
            deferred.append(statement)  # after the copy
        elif statement.strip():
            cur.execute(statement)
    cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
    for table in ("lookup_build", "lookup_package"):
        cur.execute(f"INSERT INTO {BEFORE}.{table} SELECT * FROM {source}.{table}")
    started = time.perf_counter()
    cur.execute(
        f"INSERT INTO {BEFORE}.lookup_elffile (build_id, path, path_key, elf_type, machine, "
        "debug, package_note, package_id, elf_class, big_endian) "
        "SELECT build_id, full, UNHEX(LEFT(SHA2(full, 256), 32)), elf_type, machine, debug, "
        "package_note, package_id, elf_class, big_endian FROM (SELECT e.*, REPLACE(p.path, "
        "CHAR(0), CONCAT(LOWER(HEX(LEFT(e.build_id, 1))), '/', "
        "LOWER(HEX(SUBSTRING(e.build_id, 2))))) AS full "
        f"FROM {source}.lookup_elffile e JOIN {source}.lookup_path p ON p.id = e.path_id "
        "ORDER BY e.package_id, e.path_id) s")
    for statement in deferred:
        cur.execute(statement)
    cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
    print(f"[bench_bigtable] copied into the layout before in {time.perf_counter() - started:.0f}"
          " s", file=sys.stderr, flush=True)
    con.close()
    sizes = table_bytes(BEFORE)
    per = {t: sizes.get(t, 0) / rows for t in TABLES}
    return (f"{BEFORE} (the rows of {source}, layout of {BEFORE_COMMIT}): bytes per ELF row: ELF "
            f"table {per['lookup_elffile']:.1f} (path texts in it); + packages "
            f"{per['lookup_package']:.1f} + builds {per['lookup_build']:.1f} = "
            f"{sum(per.values()):.1f} (all tables)")


# The lookup statement of the layout before: no path join, the path text in the ELF row.
_PATH_JOIN = " INNER JOIN `lookup_path` ON (`lookup_elffile`.`path_id` = `lookup_path`.`id`)"


def sql_cost(database: str, rows: int, rounds: int = 3) -> str:
    """The lookup statement alone over one connection (client wall time per query, 1 and 8 ids
    a query), on ``database`` and its copy in the layout before, alternating; best of
    ``rounds``."""
    script = r"""
import json, random, sys, time
sys.path.insert(0, sys.argv[1])
import django
django.setup()
import MySQLdb, gen_rows
from darkserver.lookup import queries
rows, before, now, join = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
new = {n: queries.lookup_sql("default", n) for n in (1, 8)}
old = {n: s.replace("`lookup_path`.`path` AS `path__path`", "`lookup_elffile`.`path` AS `path`")
       .replace(join, "") for n, s in new.items()}
rng = random.Random(4)
ids = [gen_rows.build_id(rng.randint(1, rows)) for _ in range(4000)]
def run(db, sql, size, count):
    con = MySQLdb.connect(host="127.0.0.1", user="root", database=db)
    cur = con.cursor()
    for first in (True, False):  # the first pass warms the buffer pool
        started = time.perf_counter()
        for i in range(0, (4000 if first else count * size), size):
            cur.execute(sql, {f"p{j}": ids[(i + j) % 4000] for j in range(size)})
            cur.fetchall()
    con.close()
    return (time.perf_counter() - started) / count * 1e6
best = {}
for _ in range(int(sys.argv[6])):
    for name, db, sqls in (("before", before, old), ("now", now, new)):
        for size in (1, 8):
            us = run(db, sqls[size], size, 2000 if size == 1 else 400)
            best[f"{name} {size}"] = min(us, best.get(f"{name} {size}", us))
print(json.dumps(best))
"""
    env = dict(os.environ, DARKSERVER_DATABASE_URL=gen_rows.mariadb_url(database),
               DJANGO_SETTINGS_MODULE="darkserver.settings")
    out = subprocess.run([sys.executable, "-c", script, str(HERE), str(rows), BEFORE, database,
                          _PATH_JOIN, str(rounds)], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    best = json.loads(out.strip().splitlines()[-1])
    return (f"lookup statement, one connection, best of {rounds} alternating: 1 id "
            f"{best['before 1']:.0f} us before, {best['now 1']:.0f} us now; 8 ids "
            f"{best['before 8']:.0f} / {best['now 8']:.0f} us; load average "
            f"{os.getloadavg()[0]:.1f}")


# --- the service -------------------------------------------------------------------------------


def stats_times(port: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for i in range(STATS_REQUESTS + 5):
        started = time.perf_counter()
        status, data = bench_lookup.get_raw(conn, "GET", "/api/v1/stats")
        took = (time.perf_counter() - started) * 1e3
        if status != 200:
            raise SystemExit(f"/api/v1/stats: {status} {data[:200]!r}")
        if i >= 5:
            times.append(took)
    conn.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def lookup_files(rows: int, work: Path) -> tuple[Path, Path, list[int]]:
    rng = random.Random(1)
    sample = [rng.randint(1, rows) for _ in range(bench_lookup.ID_SAMPLE)]
    single = work / f"single-{rows}.txt"
    single.write_text("".join(f"/api/v1/buildid/{gen_rows.build_id(n).hex()}\n" for n in sample))
    batch = work / f"batch-{rows}.txt"
    batch.write_text("".join(body.decode() + "\n"
                             for body, _ in bench_lookup.batch_bodies(rows, 100, seed=3)))
    return single, batch, sample


def measure_service(database: str, rows: int, work: Path, duration: float) -> dict[str, Any]:
    single, batch, sample = lookup_files(rows, work)
    port = bench_lookup.free_port()
    proc = bench_lookup.start_service(gen_rows.mariadb_url(database), port, CONFIG)
    try:
        bench_lookup.wait_http(port, "/api/v1/health", proc)
        bench_lookup.verify(port, rows, sample)
        stats = stats_times(port)
        url = f"http://127.0.0.1:{port}"
        # Warm-up over other ids than those measured: the buffer pool holds what it can.
        warm = work / "warm.txt"
        rng = random.Random(7)
        warm.write_text("".join(f"/api/v1/buildid/{gen_rows.build_id(rng.randint(1, rows)).hex()}"
                                "\n" for _ in range(4000)))
        bench_lookup.run_wrk(url, warm, min(5.0, duration))
        pids = (proc.pid, *([p] if (p := bench_lookup.mariadbd_pid()) else []))
        one = bench_lookup.run_wrk(url, single, duration, pids)
        # A batch takes tens of milliseconds, 16 of them in flight more: wrk's 2 s timeout
        # would count the slow ones as errors instead of measuring them.
        many = bench_lookup.run_wrk(url, batch, duration, pids,
                                    load=[*bench_lookup.WRK, "--timeout", "30s"])
        c1 = bench_lookup.run_batch(port, rows)
    finally:
        bench_lookup.stop(proc)
    return {"stats": stats, "single": one, "batch": many, "batch_c1": c1}


def service_line(database: str, r: dict[str, Any]) -> str:
    one, many = r["single"], r["batch"]
    return (f"{database}: stats p50 {r['stats'][0]:.2f} ms p99 {r['stats'][1]:.2f} ms | single "
            f"{one.rps:,.0f}/s p50 {one.p50_ms:.2f} p99 {one.p99_ms:.2f} ms | batch of 1,000 "
            f"-c16 {many.rps:,.0f}/s p50 {many.p50_ms:.1f} p99 {many.p99_ms:.1f} ms, -c1 p50 "
            f"{r['batch_c1'][0]:.1f} p95 {r['batch_c1'][1]:.1f} ms | other CPU "
            f"{one.foreign_cpu:.2f}/{many.foreign_cpu:.2f}")


# --- imports -----------------------------------------------------------------------------------

# Runs in a child process with Django on the database given: store then remove the packages.
_IMPORT = r"""
import hashlib, json, sys, time
import darkserver.settings
options = darkserver.settings.DATABASES["default"].setdefault("OPTIONS", {})
options["init_command"] = "SET SESSION sql_log_bin = 0"
import django
django.setup()
from django.db import transaction
from darkimport.run import store
from darkimport.run.records import ElfRecord, PackageMeta, PackageScan
from darkserver.lookup import paths
from darkserver.lookup.models import Build, Package, Path
sys.path.insert(0, sys.argv[1])
import gen_rows
builds = int(sys.argv[2])
scans = []
for n in range(2 * builds):
    # Even n: version 1.9 of a stored name (its paths are there); odd n: a name of its own.
    m = n // 2 + 1
    name = f"bench{m}" if n % 2 == 0 else f"benchnew{m}"
    count = min(gen_rows.files(m), 200)
    for debug in (False, True):
        pkg = name + ("-debuginfo" if debug else "")
        nvra = f"{pkg}-1.9-{m}.fc40.x86_64"
        elves = []
        for i in range(count):
            bid = hashlib.sha1(f"import {name} {i}".encode()).digest()
            path = (f"{paths.BUILD_ID_DIR}{bid.hex()[:2]}/{bid.hex()[2:]}.debug" if debug
                    else gen_rows.binary_path(m, i).replace(f"bench{m}", name))
            elves.append(ElfRecord(bid, path, 3, 62, 64, False, debug))
        meta = PackageMeta(kind="rpm", nvra=nvra, name=pkg, epoch=None, version="1.9",
                           release=f"{m}.fc40", arch="x86_64", filename=nvra + ".rpm",
                           source_name=name, size=1000, distro="fc40",
                           sha256=hashlib.sha256(nvra.encode()).hexdigest())
        scans.append(PackageScan(meta=meta, elves=elves, elf_files=count, without_build_id=0))
rows = sum(len(s.elves) for s in scans)
started = time.perf_counter()
for scan in scans:
    assert store.store_scan(scan).inserted
stored = time.perf_counter() - started
started = time.perf_counter()
names = set()
for scan in scans:
    package = Package.objects.get(nvra=scan.meta.nvra)
    names.add(package.name)
    with transaction.atomic():
        assert store._remove(package)
removed = time.perf_counter() - started
Build.objects.filter(version="1.9", packages__isnull=True).delete()
# The path rows of the new names go too (the stored names' were there before).
Path.objects.filter(scope__in=[n.encode() for n in names if n.startswith("benchnew")]).delete()
print(json.dumps({"packages": len(scans), "rows": rows, "store_s": stored, "remove_s": removed}))
"""


def measure_import(database: str) -> dict[str, float]:
    env = dict(os.environ, DARKSERVER_DATABASE_URL=gen_rows.mariadb_url(database),
               DARKSERVER_ROLE="importer", DJANGO_SETTINGS_MODULE="darkserver.settings")
    out = subprocess.run([sys.executable, "-c", _IMPORT, str(HERE), str(IMPORT_BUILDS)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"import into {database} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def empty_database() -> None:
    con = gen_rows._mysql(None)
    cur = con.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {EMPTY}")
    cur.execute(f"CREATE DATABASE {EMPTY} CHARACTER SET utf8mb4")
    cur.execute(f"USE {EMPTY}")
    gen_rows.apply_ddl(cur)
    con.close()


def import_line(database: str, r: dict[str, float]) -> str:
    return (f"{database}: store {r['packages'] / r['store_s']:,.0f} packages/s "
            f"{r['rows'] / r['store_s']:,.0f} ELF rows/s ({r['packages']} packages, {r['rows']:,}"
            f" rows, {r['store_s']:.2f} s) | remove {r['packages'] / r['remove_s']:,.0f} "
            f"packages/s ({r['remove_s']:.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", action="append", required=True, help="NAME:ROWS (repeatable)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    ap.add_argument("--skip", default="", help="comma-separated: size,service,import")
    ap.add_argument("--before", action="store_true",
                    help="also copy the first --db into the layout before and measure its size")
    args = ap.parse_args()
    dbs = [(name, int(rows)) for name, rows in (d.split(":") for d in args.db)]
    skip = set(args.skip.split(","))
    pool = gen_rows.raise_buffer_pool()
    print(f"innodb_buffer_pool_size {pool / 1024**3:.1f} GiB; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    for name, rows in dbs:
        if not gen_rows._mariadb_ready(rows, name):
            raise SystemExit(f"{name} does not hold {rows:,} generated rows: "
                             f"bench/gen_rows.py --backend mariadb --rows {rows} --database {name}")
        if "size" not in skip:
            print(size_line(name, rows), flush=True)
    if args.before:
        print(before_line(*dbs[0]), flush=True)
        print(sql_cost(*dbs[0]), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-bigtable-") as tmp:
        for run in range(args.repeat):
            if "service" not in skip:
                for name, rows in dbs:
                    r = measure_service(name, rows, Path(tmp), args.duration)
                    print(f"run {run + 1} {service_line(name, r)}; load average "
                          f"{os.getloadavg()[0]:.1f}", flush=True)
            if "import" not in skip:
                for name in [EMPTY, *(n for n, _ in dbs)]:
                    if name == EMPTY:
                        empty_database()
                    print(f"run {run + 1} {import_line(name, measure_import(name))}", flush=True)
    con = gen_rows._mysql(None)
    con.cursor().execute(f"DROP DATABASE IF EXISTS {EMPTY}")
    con.cursor().execute(f"DROP DATABASE IF EXISTS {BEFORE}")
    con.close()


if __name__ == "__main__":
    main()
