"""The default ASGI app called in-process (no HTTP server): time per single lookup and per
batch of 1,000 ids (500 existing), and cProfile tops of both, on a bench database.

    python bench/profile_asgi.py [--backend sqlite|mariadb] [--rows N] [--profile]

Uses the databases bench/gen_rows.py made (bench_lookup.py makes them when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_rows  # noqa: E402


def database_url(backend: str, rows: int) -> str:
    if backend == "mariadb":
        return gen_rows.MARIADB_URL
    return f"sqlite:///{gen_rows.RESULTS / f'lookup-{rows}.sqlite3'}"


async def call(app: Any, method: str, path: str, body: bytes = b"") -> int:
    headers = [(b"content-length", str(len(body)).encode())] if body else []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("bench", 80)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


async def run(app: Any, rows: int, with_profile: bool) -> None:
    fast = getattr(app, "app", app)  # under the body limit (darkserver.asgi)
    await fast.db.ensure()
    ids = [gen_rows.build_id(n * 7919 % rows + 1).hex() for n in range(2000)]
    for b in ids[:200]:
        await call(app, "GET", f"/api/v1/buildid/{b}")
    started = time.perf_counter()
    for b in ids:
        assert await call(app, "GET", f"/api/v1/buildid/{b}") == 200
    print(f"single lookup: {(time.perf_counter() - started) / len(ids) * 1e6:.0f} us")
    body = json.dumps({"buildids": ids[:500] + [f"{n:040x}" for n in range(500)]}).encode()
    times = []
    for _ in range(20):
        started = time.perf_counter()
        assert await call(app, "POST", "/api/v1/buildids", body) == 200
        times.append((time.perf_counter() - started) * 1e3)
    print(f"batch of 1,000 (500 found): median {statistics.median(times):.1f} ms")
    if with_profile:
        for title, path, payload, repeat in (("2,000 single lookups", None, b"", 1),
                                              ("5 batches", "/api/v1/buildids", body, 5)):
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(repeat):
                if path is None:
                    for b in ids:
                        await call(app, "GET", f"/api/v1/buildid/{b}")
                else:
                    await call(app, "POST", path, payload)
            prof.disable()
            print(f"cProfile of {title}:")
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "mariadb"), default="sqlite")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    os.environ["DARKSERVER_DATABASE_URL"] = database_url(args.backend, args.rows)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "darkserver.settings")
    from darkserver.asgi import application

    asyncio.run(run(application, args.rows, args.profile))


if __name__ == "__main__":
    main()
