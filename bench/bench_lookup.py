"""Lookup benchmark: one build-id over HTTP under gunicorn, against debuginfod's cheapest answer.

For each backend (SQLite, MariaDB) with >= 10^7 generated ELF rows (bench/gen_rows.py, reused
when present), for each gunicorn setting (--configs):
  * start the real service (conf/gunicorn.conf.py), check a sample of answers, warm up;
  * wrk -t2 -c16 --latency over a few thousand existing ids on /buildids/<id> and
    /api/v1/buildid/<id>: requests/s, median, p99; and wrk -t1 -c1 on /api/v1/buildid/<id>
    (the service time without queueing);
  * POST 1,000 ids (half of them existing) to /api/v1/buildids 30 times over one keep-alive
    connection: median and p95 from sending the request to reading the last byte of the answer.
In the same run, debuginfod (no scan dirs) answering GET /buildid/<unknown>/debuginfo (404) under
the same wrk settings. Prints one table and the targets.

    .venv/bin/python bench/bench_lookup.py [--backend sqlite|mariadb|both] [--rows N]
        [--duration S] [--configs edge:2,uvicorn:2,gthread:2x2,sync:2] [--profile]
        [--answer-cache MB,MB...] [--rounds N] [--ids N]

--answer-cache runs each gunicorn setting once per value of DARKSERVER_ANSWER_CACHE_MB (0: no
answer cache), --rounds times over, alternating (before/after in the same run); --ids sets how
many distinct ids wrk rotates over (default 4,000; far more than a small cache holds shows
what misses cost).

--profile also times the WSGI app in-process (no HTTP server) with the configured database
settings and with a few what-ifs, and prints cProfile tops of one GET and of a batch.

MariaDB: root@127.0.0.1:3306, database darkserver_bench (BENCH_MARIADB_DATABASE: another, e.g. a
pre-generated one); the table shows mariadbd's CPU per request; innodb_buffer_pool_size is raised to
4 GiB at runtime (not persisted) so the 10^7-row table and its indexes stay in memory.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_rows  # noqa: E402
from common import tree_rss  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = ROOT / ".venv" / "bin"
LUA = HERE / "lookup_ids.lua"
WRK = ["wrk", "-t2", "-c16", "--latency"]
WRK_C1 = ["wrk", "-t1", "-c1", "--latency"]
ID_SAMPLE = 4000
BATCH = 1000
BATCH_REPEAT = 30
TARGETS = {"p50_ms": 1.0, "p99_ms": 5.0, "batch_ms": 20.0}


@dataclass
class Wrk:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    errors: int
    foreign_cpu: float = 0.0  # CPU share used by other processes meanwhile (1.0 = one core)
    db_us: float | None = None  # mariadbd CPU per request (us), when serving MariaDB
    srv_us: float | None = None  # the gunicorn tree's CPU per request (us)

    def cells(self) -> list[str]:
        return [f"{self.rps:,.0f}", f"{self.p50_ms:.2f}", f"{self.p99_ms:.2f}",
                f"{self.foreign_cpu:.2f}", "" if self.srv_us is None else f"{self.srv_us:.0f}",
                "" if self.db_us is None else f"{self.db_us:.0f}"]


@dataclass
class Result:
    backend: str
    config: str
    compat: Wrk | None = None
    api: Wrk | None = None
    api_c1: Wrk | None = None  # one connection: the service time without queueing
    batch_p50_ms: float = 0.0
    batch_p95_ms: float = 0.0
    peak_rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)


# --- helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not answer {path} in {seconds} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def _busy_ticks() -> int:
    """CPU ticks spent by the whole machine: user, nice, system and steal (irq and softirq are
    left out: on loopback they are mostly the benchmark's own traffic)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return f[0] + f[1] + f[2] + f[7]


def mariadbd_pid() -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "mariadbd":
                    return int(entry)
            except OSError:
                continue
    return None


def _tree_ticks(pid: int) -> int:
    """utime + stime (+ waited-for children's) of a process tree."""
    total, stack, kids = 0, [pid], {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            kids.setdefault(int(stat[1]), []).append((int(entry), stat))
    own = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total += sum(int(x) for x in own[11:15])
    while stack:
        for child, stat in kids.get(stack.pop(), []):
            total += sum(int(x) for x in stat[11:15])
            stack.append(child)
    return total


def _db_ticks(pid: int) -> int:
    """utime + stime of the mariadbd threads serving connections to the benchmark's database
    (one thread per connection; information_schema.PROCESSLIST names each one's TID): what
    our lookups cost the server, whatever other clients of the same server do meanwhile."""
    con = gen_rows._mysql(None)
    try:
        cur = con.cursor()
        cur.execute("SELECT TID FROM information_schema.PROCESSLIST WHERE DB = %s",
                    (gen_rows.DATABASE,))
        tids = [int(row[0]) for row in cur.fetchall()]
    finally:
        con.close()
    total = 0
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the connection ended meanwhile
            continue
        total += int(stat[11]) + int(stat[12])
    return total


def run_wrk(url: str, paths_file: Path, duration: float, server_pids: tuple[int, ...] = (),
            load: list[str] = WRK, db_pid: int | None = None) -> Wrk:
    """One wrk run; ``server_pids``: the process trees serving it (for the other-CPU figure);
    ``db_pid``: mariadbd, whose CPU per request for our connections is reported."""
    cmd = [*load, f"-d{duration:g}s", "-s", str(LUA), url, "--", str(paths_file)]
    db0 = _db_ticks(db_pid) if db_pid else 0
    srv0 = sum(_tree_ticks(p) for p in server_pids[:1])
    busy0 = _busy_ticks()
    server0 = sum(_tree_ticks(p) for p in server_pids)
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.monotonic() - started
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    tick = os.sysconf("SC_CLK_TCK")
    ours = (child1.ru_utime + child1.ru_stime - child0.ru_utime - child0.ru_stime) * tick
    ours += sum(_tree_ticks(p) for p in server_pids) - server0
    foreign = max(0.0, (_busy_ticks() - busy0 - ours) / tick / wall)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))  # "1.47s ": a space
    if len(pct) != 2:  # no request answered in time: say so, keep going
        print(f"wrk gave no latency distribution:\n{out}", file=sys.stderr)
        pct = {"50": "0s", "99": "0s"}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(x) for x in sock.groups()) if sock else 0
    db_us = (_db_ticks(db_pid) - db0) / tick / max(total, 1) * 1e6 if db_pid else None
    srv_us = (sum(_tree_ticks(p) for p in server_pids[:1]) - srv0) / tick / max(total, 1) * 1e6
    return Wrk(rps, _ms(pct["50"]), _ms(pct["99"]), total,
               int(non2xx.group(1)) if non2xx else 0, errors, foreign, db_us,
               srv_us if server_pids else None)


def get_raw(conn: http.client.HTTPConnection, method: str, path: str,
            body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def get_json(conn: http.client.HTTPConnection, method: str, path: str,
             body: bytes | None = None) -> tuple[int, Any]:
    status, data = get_raw(conn, method, path, body)
    return status, json.loads(data) if data else None


# --- the service -------------------------------------------------------------------------------


def parse_config(text: str) -> tuple[str, int, int]:
    """``sync:2`` -> (sync, 2 workers, 1 thread); ``gthread:2x4`` -> (gthread, 2, 4)."""
    kind, _, size = text.partition(":")
    workers, _, threads = size.partition("x")
    return kind, int(workers or 2), int(threads or 1)


# gunicorn worker kinds: the default ASGI setup ("edge": uvicorn's worker with the HTTP edge's
# bounds, darkserver/httpedge.py), uvicorn's plain worker, and gunicorn's own WSGI ones.
ASGI_WORKERS = {"edge": "darkserver.httpedge.EdgeWorker", "uvicorn": "uvicorn_worker.UvicornWorker"}
WORKER_KINDS = {**ASGI_WORKERS, "sync": "sync", "gthread": "gthread"}


def start_service(url: str, port: int, config: str) -> subprocess.Popen[bytes]:
    """``config``: kind:WORKERS[xTHREADS], optionally followed by " cache=MB" (the answer
    cache's size; without it the service's default)."""
    config, _, cache = config.partition(" cache=")
    kind, workers, threads = parse_config(config)
    worker_class = WORKER_KINDS[kind]
    env = dict(os.environ, DARKSERVER_DATABASE_URL=url, DARKSERVER_WORKERS=str(workers),
               DARKSERVER_WORKER_CLASS=worker_class, DARKSERVER_THREADS=str(threads),
               DARKSERVER_LOG_LEVEL="ERROR")  # no "Not Found" lines
    if cache:
        env["DARKSERVER_ANSWER_CACHE_MB"] = cache
    env.pop("DARKSERVER_ACCESS_LOG", None)
    asgi = worker_class in ASGI_WORKERS.values()
    app = "darkserver.asgi:application" if asgi else "darkserver.wsgi"
    cmd = [str(VENV / "gunicorn"), "-c", "conf/gunicorn.conf.py",
           "--bind", f"127.0.0.1:{port}", app]
    return subprocess.Popen(cmd, cwd=ROOT, env=env)


def verify(port: int, rows: int, sample: list[int]) -> None:
    """A sample of answers is right: 200 with the row's rpm, path and id first (of its
    MATCHES_PER_ID rows); a miss is a miss."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for n in sample[:50]:
        want = gen_rows.row(n, rows)
        status, doc = get_json(conn, "GET", f"/buildids/{want['buildid']}")
        many = gen_rows.MATCHES_PER_ID
        got = doc[0] if status == 200 and isinstance(doc, list) and len(doc) == many else None
        if not got or (got["rpm"], got["elf"], got["buildid"]) != (
                want["rpm"], want["elf"], want["buildid"]):
            raise SystemExit(f"/buildids/{want['buildid']}: {status} {doc!r}, expected {want}")
        status, doc = get_json(conn, "GET", f"/api/v1/buildid/{want['buildid'].upper()}")
        matches = doc.get("matches") if status == 200 else None
        if not matches or len(matches) != many or matches[0]["package"]["nvra"] != want["rpm"] \
                or matches[0]["path"] != want["elf"] or matches[0]["debug"] != want["debug"]:
            raise SystemExit(f"/api/v1/buildid/{want['buildid']}: {status} {doc!r}")
    missing = "00" * 20
    status, doc = get_json(conn, "GET", f"/buildids/{missing}")
    if (status, doc) != (200, []):
        raise SystemExit(f"/buildids/<unknown>: {status} {doc!r}")
    status, doc = get_json(conn, "GET", f"/api/v1/buildid/{missing}")
    if status != 404:
        raise SystemExit(f"/api/v1/buildid/<unknown>: {status} {doc!r}")
    conn.close()


def batch_bodies(rows: int, count: int, seed: int) -> list[tuple[bytes, set[str]]]:
    """``count`` request bodies of BATCH ids, half existing (the set returned), half unknown."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        known = {gen_rows.build_id(rng.randint(1, rows)).hex() for _ in range(BATCH // 2)}
        while len(known) < BATCH // 2:
            known.add(gen_rows.build_id(rng.randint(1, rows)).hex())
        unknown = [rng.randbytes(20).hex() for _ in range(BATCH - len(known))]
        ids = [*known, *unknown]
        rng.shuffle(ids)
        bodies.append((json.dumps({"buildids": ids}).encode(), known))
    return bodies


def run_batch(port: int, rows: int) -> tuple[float, float]:
    bodies = batch_bodies(rows, BATCH_REPEAT + 3, seed=2)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for i, (body, known) in enumerate(bodies):
        # Timed: request sent to the last byte of the answer read. Decoding the JSON is the
        # client's own work (Python's json takes ~4 ms for 500 matches), checked afterwards.
        started = time.perf_counter()
        status, data = get_raw(conn, "POST", "/api/v1/buildids", body)
        took = (time.perf_counter() - started) * 1e3
        doc = json.loads(data)
        missing = BATCH - len(known)
        if status != 200 or set(doc["results"]) != known or len(doc["missing"]) != missing:
            raise SystemExit(f"batch: {status}, {len(doc.get('results', ()))} found "
                             f"(expected {len(known)}), {str(doc)[:200]}")
        if i >= 3:  # the first three warm up
            times.append(took)
    conn.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95 + 0.5) - 1]


def query_ids(port: int) -> tuple[float, float]:
    """(queries, ids) of the fast path's single lookups so far: darkserver_fastpath_query_ids
    from /metrics (summed over the workers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    status, data = get_raw(conn, "GET", "/metrics")
    conn.close()
    found = dict(re.findall(r"^darkserver_fastpath_query_ids_(count|sum) ([\d.e+]+)$",
                            data.decode(), re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def bench_service(backend: str, url: str, rows: int, config: str, paths: dict[str, Path],
                  sample: list[int], duration: float) -> Result:
    port = free_port()
    proc = start_service(url, port, config)
    result = Result(backend, config)
    try:
        wait_http(port, "/api/v1/health", proc)
        verify(port, rows, sample)
        # PSS is read between the runs, never during one: reading smaps_rollup of a worker
        # that maps a 1 GB database costs ~30 ms of CPU, which a 50 ms sampler would take
        # from the server it measures (it did: p99 5-6 ms with it, 2-5 ms without).
        peak = tree_rss(proc.pid)
        db_pid = mariadbd_pid() if backend == "mariadb" else None
        pids = (proc.pid, db_pid) if db_pid else (proc.pid,)
        base = f"http://127.0.0.1:{port}"
        for name in ("compat", "api"):
            run_wrk(base, paths[name], min(3.0, duration))  # warm-up: workers, DB caches
            queries0 = query_ids(port)
            measured = run_wrk(base, paths[name], duration, pids, db_pid=db_pid)
            queries1 = query_ids(port)
            asked = queries1[0] - queries0[0]
            if asked:
                per_query = (queries1[1] - queries0[1]) / asked
                result.notes.append(f"{name}: {per_query:.1f} ids per fast-path query")
            peak = max(peak, tree_rss(proc.pid))
            if measured.non2xx or measured.errors:
                result.notes.append(f"{name}: {measured.non2xx} non-2xx, "
                                    f"{measured.errors} socket errors")
            setattr(result, name, measured)
        result.api_c1 = run_wrk(base, paths["api"], min(5.0, duration), pids, WRK_C1, db_pid)
        result.batch_p50_ms, result.batch_p95_ms = run_batch(port, rows)
        result.peak_rss_mb = max(peak, tree_rss(proc.pid)) / 1e6
    finally:
        stop(proc)
    return result


# --- debuginfod --------------------------------------------------------------------------------


def bench_debuginfod(duration: float) -> Wrk:
    tmp = Path(tempfile.mkdtemp(prefix="bench-debuginfod-"))
    port = free_port()
    proc = subprocess.Popen(["debuginfod", "-d", str(tmp / "db.sqlite"), "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    paths = tmp / "paths.txt"
    rng = random.Random(3)
    paths.write_text("".join(f"/buildid/{rng.randbytes(20).hex()}/debuginfo\n"
                             for _ in range(ID_SAMPLE)))
    try:
        wait_http(port, "/metrics", proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/buildid/{'ab' * 20}/debuginfo")
        status = conn.getresponse().status
        conn.close()
        if status != 404:
            raise SystemExit(f"debuginfod answered {status} for an unknown build-id")
        base = f"http://127.0.0.1:{port}"
        run_wrk(base, paths, min(3.0, duration))
        return run_wrk(base, paths, duration, (proc.pid,))
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# --- in-process profile ------------------------------------------------------------------------

_PROFILE = r"""
import cProfile, io, json, os, pstats, sys, time
sys.path.insert(0, sys.argv[1])
import gen_rows
import darkserver.settings
darkserver.settings.DATABASES["default"].update(json.loads(os.environ["BENCH_DB_OVERRIDES"]))
from darkserver.wsgi import application
rows, n, with_profile = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
ids = [gen_rows.build_id(i * 2654435761 % rows + 1).hex() for i in range(1, n + 1)]
def call(path):
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "x", "SERVER_PORT": "80",
           "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "QUERY_STRING": ""}
    out = []
    response = application(env, lambda s, h, e=None: out.append(s))
    body = b"".join(response)
    getattr(response, "close", lambda: None)()  # as a WSGI server does: request_finished
    assert out[0].startswith("200"), (path, out, body[:200])
for prefix in ("/buildids/", "/api/v1/buildid/"):
    for b in ids[:300]:
        call(prefix + b)
    t = time.perf_counter()
    for b in ids:
        call(prefix + b)
    print(f"  {prefix}<id>: {(time.perf_counter() - t) / n * 1e6:.0f} us/request")
import random
rng = random.Random(5)
bodies = []
for _ in range(23):
    known = [gen_rows.build_id(rng.randint(1, rows)).hex() for _ in range(500)]
    bodies.append(json.dumps({"buildids": known + [rng.randbytes(20).hex() for _ in range(500)]})
                  .encode())
def post(body):
    env = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/buildids", "SERVER_NAME": "x",
           "SERVER_PORT": "80", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
           "QUERY_STRING": "", "CONTENT_TYPE": "application/json",
           "CONTENT_LENGTH": str(len(body))}
    out = []
    response = application(env, lambda s, h, e=None: out.append(s))
    b"".join(response)
    getattr(response, "close", lambda: None)()
    assert out[0].startswith("200"), out
for body in bodies[:3]:
    post(body)
times = []
for body in bodies[3:]:
    t = time.perf_counter()
    post(body)
    times.append((time.perf_counter() - t) * 1e3)
times.sort()
print(f"  batch of 1,000 (500 found): median {times[len(times) // 2]:.1f} ms")
if with_profile:
    prof = cProfile.Profile()
    prof.enable()
    for body in bodies[3:13]:
        post(body)
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
    print("  cProfile of 10 batches:")
    print("\n".join(s.getvalue().strip().splitlines()[3:]))
    prof = cProfile.Profile()
    prof.enable()
    for b in ids:
        call("/buildids/" + b)
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(20)
    print(f"  cProfile of {n} GET /buildids/<id>:")
    print("\n".join(s.getvalue().strip().splitlines()[3:]))
"""

# What-ifs timed next to the configured settings (DATABASES['default'] overrides).
WHAT_IF = {
    "sqlite": {"persistent connection (CONN_MAX_AGE=600)": {"CONN_MAX_AGE": 600}},
    "mariadb": {"no ping per request (CONN_HEALTH_CHECKS=False)": {"CONN_HEALTH_CHECKS": False}},
}


def profile(backend: str, url: str, rows: int, requests: int = 3000) -> str:
    """The WSGI app called in-process (no HTTP server, one thread): time per request with the
    configured settings and with each WHAT_IF, and a cProfile of /buildids/<id>."""
    out = [f"--- {backend}: WSGI app in-process, {requests} distinct ids, one thread ---"]
    variants = {"as configured": {}, **WHAT_IF.get(backend, {})}
    for i, (label, overrides) in enumerate(variants.items()):
        env = dict(os.environ, DARKSERVER_DATABASE_URL=url, DARKSERVER_LOG_LEVEL="ERROR",
                   BENCH_DB_OVERRIDES=json.dumps(overrides),
                   DJANGO_SETTINGS_MODULE="darkserver.settings")
        cmd = [str(VENV / "python"), "-c", _PROFILE, str(HERE), str(rows), str(requests),
               "1" if i == 0 else "0"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        out.append(f"{label}:")
        out.append(done.stdout.rstrip() + (f"\n{done.stderr[-2000:]}" if done.returncode else ""))
    return "\n".join(out)


# --- report ------------------------------------------------------------------------------------


def mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def table(results: list[Result], dbg: Wrk, rows: int, duration: float) -> str:
    head = ["backend", "gunicorn", "endpoint", "req/s", "p50 ms", "p99 ms", "other CPU",
            "srv us/req", "db us/req", "batch p50", "p95", "vs targets"]
    lines = [head]
    for r in results:
        for name, w in (("/buildids/<id>", r.compat), ("/api/v1/buildid/<id>", r.api),
                        ("/api/v1/buildid/<id> -c1", r.api_c1)):
            if w is None:
                continue
            if name.endswith("-c1"):
                lines.append([r.backend, r.config, name, *w.cells(), "", "",
                              "(one connection: service time)"])
                continue
            verdict = " ".join([
                "rps " + mark(w.rps >= dbg.rps),
                "p50 " + mark(w.p50_ms <= TARGETS["p50_ms"]),
                "p99 " + mark(w.p99_ms <= TARGETS["p99_ms"]),
            ])
            batch = ["", ""]
            if name.startswith("/api"):
                batch = [f"{r.batch_p50_ms:.1f}", f"{r.batch_p95_ms:.1f}"]
                verdict += " batch " + mark(r.batch_p50_ms <= TARGETS["batch_ms"])
            lines.append([r.backend, r.config, name, *w.cells(), *batch, verdict])
    lines.append(["debuginfod", "0.188", "/buildid/<unknown>/debuginfo (404)", *dbg.cells(),
                  "", "", ""])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = [f"Lookup benchmark: {rows:,} ELF rows, wrk -t2 -c16 -d{duration:g}s, "
           f"{os.cpu_count()} CPUs"]
    for i, line in enumerate(lines):
        out.append("  ".join(str(c).ljust(w) if j < 3 or j == 11 else str(c).rjust(w)
                             for j, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append(f"targets: req/s >= debuginfod's ({dbg.rps:,.0f}), median <= "
               f"{TARGETS['p50_ms']:g} ms, p99 <= {TARGETS['p99_ms']:g} ms, batch of {BATCH:,} "
               f"(half existing) <= {TARGETS['batch_ms']:g} ms (median of {BATCH_REPEAT})")
    out.append("At -c16 a median of 1 ms needs ~16,000 req/s (Little's law: 16 in flight); "
               "the -c1 row is the per-request latency without queueing.")
    out.append("srv / db us/req: CPU per request of the gunicorn tree / of the mariadbd threads "
               "serving its connections (/proc before and after the run): little affected by "
               "other load, unlike req/s")
    out.append("other CPU: cores (of 2) busy with other processes than wrk, the server and its "
               "mariadbd during the run, steal included; above ~0.2 the figures are depressed")
    for r in results:
        out.append(f"{r.backend} {r.config}: PSS of the gunicorn tree after the load "
                   f"{r.peak_rss_mb:.0f} MB"
                   + ("; " + "; ".join(r.notes) if r.notes else ""))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "mariadb", "both"), default="both")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    ap.add_argument("--configs", default="edge:2,uvicorn:2",
                    help="gunicorn settings to try: kind:WORKERS[xTHREADS], comma-separated")
    ap.add_argument("--profile", action="store_true",
                    help="also time the WSGI app in-process and print a cProfile of it")
    ap.add_argument("--answer-cache", default="",
                    help="DARKSERVER_ANSWER_CACHE_MB values to run each setting with, "
                         "comma-separated (0: off); default: the service's own")
    ap.add_argument("--rounds", type=int, default=1, help="times every setting is run")
    ap.add_argument("--ids", type=int, default=ID_SAMPLE,
                    help="distinct existing ids wrk rotates over")
    args = ap.parse_args()
    backends = ["sqlite", "mariadb"] if args.backend == "both" else [args.backend]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    caches = [c.strip() for c in args.answer_cache.split(",") if c.strip()]
    if caches:
        configs = [f"{c} cache={mb}" for c in configs for mb in caches]
    configs = configs * args.rounds

    rng = random.Random(1)
    sample = rng.sample(range(1, args.rows + 1), min(args.ids, args.rows))
    work = Path(tempfile.mkdtemp(prefix="bench-lookup-"))
    paths = {"compat": work / "compat.txt", "api": work / "api.txt"}
    ids = [gen_rows.build_id(n).hex() for n in sample]
    paths["compat"].write_text("".join(f"/buildids/{b}\n" for b in ids))
    paths["api"].write_text("".join(f"/api/v1/buildid/{b}\n" for b in ids))

    results: list[Result] = []
    profiles: list[str] = []
    debuginfods: list[Wrk] = []
    try:
        if args.rounds > 1:  # at the start too: the machine's load may change meanwhile
            debuginfods.append(bench_debuginfod(args.duration))
            print(f"debuginfod: {debuginfods[-1].cells()}", flush=True)
        for backend in backends:
            started = time.perf_counter()
            url, generated = gen_rows.ensure(backend, args.rows)
            if backend == "mariadb":
                pool = gen_rows.raise_buffer_pool()
                print(f"mariadb: innodb_buffer_pool_size {pool / 1024**3:.1f} GiB", flush=True)
            took = (f"generated in {generated:.0f} s" if generated is not None
                    else f"reused ({time.perf_counter() - started:.1f} s to check)")
            print(f"{backend}: {args.rows:,} ELF rows, {took}", flush=True)
            for config in configs:
                r = bench_service(backend, url, args.rows, config, paths, sample, args.duration)
                print(f"  {config}: /buildids {r.compat and r.compat.cells()}, "
                      f"/api/v1/buildid {r.api and r.api.cells()}, "
                      f"batch {r.batch_p50_ms:.1f}/{r.batch_p95_ms:.1f} ms", flush=True)
                results.append(r)
            if args.profile:
                profiles.append(profile(backend, url, args.rows))
        dbg = bench_debuginfod(args.duration)
        debuginfods.append(dbg)
        print(f"debuginfod: {dbg.cells()}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(results, dbg, args.rows, args.duration))
    if len(debuginfods) > 1:
        print("debuginfod req/s at the start and at the end: "
              + ", ".join(f"{d.rps:,.0f} (p99 {d.p99_ms:.2f} ms)" for d in debuginfods))
    for text in profiles:
        print(text)


if __name__ == "__main__":
    main()
