"""Koji import benchmark: builds/minute through the queue with 1, 2 and 4 workers, and
header-first versus payload import versus downloading alone, for the same builds.

    .venv/bin/python bench/bench_queue.py [--builds 12] [--padding-mb 8] [--latency-ms 20]
        [--bandwidth-mb 50] [--workers 1 2 4] [--db sqlite|mariadb]

Everything is real: builds made by rpmbuild (a PIE + hard link, a shared library, the
debuginfo package, and --padding-mb of random data in the main package so there is something to
download and decompress), the test Koji hub over HTTP (tests/kojihub.py) slowed to a remote
hub's --latency-ms per request and --bandwidth-mb MB/s per download, RabbitMQ on 127.0.0.1, and
the real ``darkserver-import koji`` / ``worker`` commands as subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from darkcore.settings import TEST_AMQP_URL  # noqa: E402
from darkimport.koji import headerfirst  # noqa: E402
from darkimport.koji.conf import KojiInstance  # noqa: E402
from darkimport.koji.source import KojiSource, RetryPolicy  # noqa: E402
from darkimport.queue.messages import BuildRequest, QueueConfig, enqueue  # noqa: E402
from tests.kojihub import KojiHub, build_rpms, instance_json  # noqa: E402

BIN = Path(sys.executable).parent
AMQP = TEST_AMQP_URL.get()


SCRATCH: list[str] = []  # MariaDB databases to drop at the end


def database(kind: str, workdir: Path, label: str) -> tuple[str, object]:
    """A fresh database URL and a handle to count packages in it."""
    if kind == "sqlite":
        path = workdir / f"{label}.sqlite3"
        return f"sqlite:///{path}", path
    sys.path.insert(0, str(ROOT))
    from tests import mariadb

    name = f"ds_bench_{label}_{uuid.uuid4().hex[:6]}"
    conn = mariadb.connect()
    conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn.close()
    SCRATCH.append(name)
    return mariadb.url(name), name


def drop_scratch() -> None:
    if not SCRATCH:
        return
    from tests import mariadb

    conn = mariadb.connect()
    for name in SCRATCH:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def packages(handle: object) -> int:
    try:
        if isinstance(handle, Path):
            with sqlite3.connect(handle, timeout=30) as conn:
                return int(conn.execute("SELECT COUNT(*) FROM lookup_package").fetchone()[0])
        from tests import mariadb

        conn = mariadb.connect(str(handle))
        try:
            cur = conn.cursor()
            cur.execute("SELECT COUNT(*) FROM lookup_package")
            return int(cur.fetchone()[0])
        finally:
            conn.close()
    except Exception:
        return 0  # schema not there yet


def migrate(url: str) -> None:
    subprocess.run(
        [sys.executable, "-c", "from darkimport import djangosetup; djangosetup.setup(); "
         "from darkimport.run.store import ensure_schema; ensure_schema()"],
        env=os.environ | {"DARKSERVER_DATABASE_URL": url}, check=True, cwd=ROOT)


def koji_command(hub: KojiHub, url: str, nvrs: list[str], mode_flag: list[str]) -> float:
    migrate(url)
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "darkserver-import"), "koji", "--hub", hub.hub_url, "--topurl", hub.topurl,
         "--instance", "bench", "-q", *mode_flag, *nvrs],
        env=os.environ | {"DARKSERVER_DATABASE_URL": url}, check=True, cwd=ROOT,
        stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def download_only(hub: KojiHub, nvrs: list[str]) -> float:
    source = KojiSource(KojiInstance("bench", hub.hub_url, hub.topurl), RetryPolicy())
    started = time.monotonic()
    for nvr in nvrs:
        build = source.get_build(nvr)
        for rpm in source.list_rpms(build):
            stream, _url = source.fetch(build, rpm)
            stream.close()
    source.close()
    return time.monotonic() - started


def through_queue(hub: KojiHub, conf: Path, url: str, handle: object, ids: list[int],
                  rpms_total: int, workers: int, mode_flag: list[str]) -> float:
    migrate(url)
    cfg = QueueConfig(url=AMQP, queue=f"darkserver.bench.{uuid.uuid4().hex[:10]}",
                      retry_delay_ms=500)
    enqueue([BuildRequest("bench", i, "bench") for i in ids], cfg)
    env = os.environ | {"DARKSERVER_DATABASE_URL": url, "DARKSERVER_KOJI_CONF": str(conf)}
    started = time.monotonic()
    log = conf.parent / f"worker-{cfg.queue}.log"
    try:
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(BIN / "darkserver-import"), "worker", "--queue", cfg.queue, "--amqp-url",
                 AMQP, "--concurrency", str(workers), "--idle-exit", "5", "--retry-delay",
                 "0.5", *mode_flag],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        while packages(handle) < rpms_total:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited {proc.returncode} before finishing:\n"
                                 + log.read_text()[-3000:])
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        proc.terminate()
        proc.wait(60)
    finally:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        channel = connection.channel()
        for name in (cfg.queue, cfg.retry_queue, cfg.dead_queue):
            channel.queue_delete(name)
        connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=12)
    parser.add_argument("--padding-mb", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--bandwidth-mb", type=float, default=50.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--db", choices=["sqlite", "mariadb"], default="sqlite")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        workdir = Path(tmp)
        print(f"building {args.builds} builds with rpmbuild ...", file=sys.stderr)
        builds = [build_rpms(workdir / "rpms", f"bench{i}", padding_mb=args.padding_mb)
                  for i in range(args.builds)]
        hub = KojiHub(workdir / "koji", latency=args.latency_ms / 1000,
                      bandwidth=args.bandwidth_mb * 1e6)
        infos = [hub.add_build(rpms) for rpms in builds]
        hub.preload_headers(headerfirst.HEADER_FIELDS)
        nvrs = [b["nvr"] for b in infos]
        ids = [b["id"] for b in infos]
        rpms_total = sum(len(r) for r in builds)
        size = sum(p.stat().st_size for r in builds for p in r)
        results: dict[str, object] = {
            "builds": args.builds, "rpms": rpms_total, "bytes": size,
            "latency_ms": args.latency_ms, "bandwidth_mb": args.bandwidth_mb, "db": args.db,
        }
        with hub.serve():
            conf = instance_json(workdir / "koji.json", hub, "bench")
            seconds = {}
            seconds["download only"] = download_only(hub, nvrs)
            for label, flag in (("payload import", []), ("header-first import",
                                                        ["--header-first"])):
                url, _handle = database(args.db, workdir, label.split()[0])
                seconds[label] = koji_command(hub, url, nvrs, flag)
            results["one process"] = {k: round(v, 3) for k, v in seconds.items()}
            queue: dict[str, dict[str, float]] = {}
            for mode, flag in (("payload", []), ("header-first", ["--header-first"])):
                for workers in args.workers:
                    url, handle = database(args.db, workdir, f"q{workers}{mode[0]}")
                    elapsed = through_queue(hub, conf, url, handle, ids, rpms_total, workers,
                                            flag)
                    queue[f"{mode}, {workers} worker(s)"] = {
                        "seconds": round(elapsed, 3),
                        "builds_per_minute": round(args.builds / elapsed * 60, 1),
                    }
            results["queue"] = queue

    print(f"{args.builds} builds, {rpms_total} rpms, {size / 1e6:.1f} MB; hub latency "
          f"{args.latency_ms:g} ms, {args.bandwidth_mb:g} MB/s; database {args.db}")
    for label, secs in results["one process"].items():  # type: ignore[attr-defined]
        print(f"  {label:22} {secs:8.2f} s  {args.builds / secs * 60:8.1f} builds/min")
    for label, row in queue.items():
        print(f"  queue, {label:24} {row['seconds']:8.2f} s  "
              f"{row['builds_per_minute']:8.1f} builds/min")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    try:
        main()
    finally:
        drop_scratch()
