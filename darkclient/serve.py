"""``darkclient serve``: a local debuginfod-compatible endpoint in front of Darkserver.

``GET /buildid/HEX/debuginfo`` and ``GET /buildid/HEX/executable`` look the id up on the
Darkserver, resolve a download URL (mirror, Koji, archive), download the package, extract the
one member (checked against its build-id) and serve it. Files are kept in a bounded on-disk
cache, evicted least recently used first when the total size passes the limit. Misses are
remembered for a minute so a debugger asking again and again costs one lookup. The Darkserver
itself stays metadata-only: packages are fetched here, on the debugging machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from darkclient import config as configmod
from darkclient.errors import ClientError, ConfigError
from darkclient.fetch import Job, pick, run_jobs
from darkclient.lookup import lookup
from darkclient.urls import Resolver, candidates, make_session

_ROUTE = re.compile(r"/buildid/([0-9a-fA-F]{8,128})/(debuginfo|executable)")
MISS_TTL = 60.0
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", re.IGNORECASE)


def parse_size(text: str) -> int:
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ConfigError(f"bad size {text!r} (use e.g. 500M or 2G)")
    return int(float(m.group(1)) * 1024 ** "_KMGT".index(m.group(2).upper() or "_"))


class Cache:
    """Extracted files under ROOT/HEX/KIND (+ KIND.json with headers), LRU by mtime."""

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def path(self, build_id: str, kind: str) -> Path:
        return self.root / build_id / kind

    def get(self, build_id: str, kind: str) -> tuple[Path, dict[str, str]] | None:
        path = self.path(build_id, kind)
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            os.utime(path)  # the LRU clock
        except (OSError, ValueError):
            return None
        return path, {str(k): str(v) for k, v in meta.items()}

    def put_meta(self, build_id: str, kind: str, meta: dict[str, str]) -> None:
        self.path(build_id, kind).with_suffix(".json").write_text(json.dumps(meta))
        self.evict(keep=self.path(build_id, kind))

    def evict(self, keep: Path | None = None) -> None:
        with self._lock:
            files = []
            for d in self.root.iterdir():
                if not d.is_dir():
                    continue
                for f in d.iterdir():
                    if f.suffix != ".json" and not f.name.startswith("."):
                        with contextlib.suppress(OSError):
                            st = f.stat()
                            files.append((st.st_mtime, st.st_size, f))
            total = sum(size for _, size, _ in files)
            for _mtime, size, f in sorted(files, key=lambda x: x[0]):
                if total <= self.limit:
                    break
                if f == keep:
                    continue
                with contextlib.suppress(OSError):
                    f.with_suffix(".json").unlink()
                    f.unlink()
                total -= size
            for d in self.root.iterdir():
                with contextlib.suppress(OSError):
                    d.rmdir()  # only succeeds when empty


class Service:
    def __init__(self, cfg: configmod.Config, server: str, cache: Cache) -> None:
        self.cfg = cfg
        self.server = server
        self.cache = cache
        self.session = make_session()
        self.resolver = Resolver(cfg, self.session)
        self._misses: dict[tuple[str, str], tuple[float, int, str]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def fetch(self, build_id: str, kind: str) -> tuple[int, str, Path | None, dict[str, str]]:
        """(status, message, file, headers) for one debuginfod request."""
        key = (build_id, kind)
        with self._lock_for(key):
            hit = self.cache.get(build_id, kind)
            if hit:
                return 200, "", hit[0], hit[1]
            miss = self._misses.get(key)
            if miss and miss[0] > time.time():
                return miss[1], miss[2], None, {}
            status, message, path, headers = self._fetch(build_id, kind)
            if status != 200:
                self._misses[key] = (time.time() + MISS_TTL, status, message)
            return status, message, path, headers

    def _fetch(self, build_id: str, kind: str) -> tuple[int, str, Path | None, dict[str, str]]:
        try:
            result = lookup(self.session, self.server, [build_id], self.cfg.timeout)
        except ClientError as exc:
            return 503, str(exc), None, {}
        matches = result.results.get(build_id, [])
        if not matches:
            return 404, f"build-id {build_id} unknown to {self.server}", None, {}
        match = pick(matches, kind == "debuginfo")
        if match is None:
            return 404, f"no {kind} file known for {build_id}", None, {}
        res = self.resolver.resolve_many([candidates(match, self.cfg)])[0]
        if res.url is None:
            tried = "; ".join(f"{c.url}: {c.error}" for c in res.checks) or "no candidate URL"
            return 404, f"no download URL answered for {build_id} ({tried})", None, {}
        dest = self.cache.path(build_id, kind)
        outcome = run_jobs(self.session, [Job(build_id, match, res.url, dest)],
                           max(self.cfg.timeout, 30.0))[0]
        if not outcome.ok:
            return 502, outcome.error, None, {}
        headers = {
            "X-DEBUGINFOD-FILE": str(match.get("path") or ""),
            "X-DEBUGINFOD-ARCHIVE": res.url,
        }
        self.cache.put_meta(build_id, kind, headers)
        return 200, "", dest, headers


class Handler(BaseHTTPRequestHandler):
    server_version = "darkclient-debuginfod/1"
    service: Service  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: debuggers ask for many ids

    def _text(self, status: int, message: str, body: bool) -> None:
        data = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _answer(self, body: bool) -> None:
        m = _ROUTE.fullmatch(self.path.split("?", 1)[0])
        if not m or len(m.group(1)) % 2:
            self._text(404, "not found: this endpoint serves /buildid/HEX/debuginfo and "
                       "/buildid/HEX/executable", body)
            return
        build_id, kind = m.group(1).lower(), m.group(2)
        status, message, path, headers = self.service.fetch(build_id, kind)
        if status != 200 or path is None:
            self._text(status, message, body)
            return
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            self._text(404, f"{build_id}: evicted from the cache, ask again", body)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("X-DEBUGINFOD-SIZE", str(size))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                shutil.copyfileobj(f, self.wfile, 1 << 20)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._answer(True)

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self._answer(False)


def make_server(service: Service, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"service": service})
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    return httpd


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"--listen wants HOST:PORT, not {text!r}")
    return host or "127.0.0.1", int(port)


def serve_main(args: argparse.Namespace, err: TextIO) -> int:
    cfg = configmod.load(args.server)
    if args.timeout:
        cfg.timeout = args.timeout
    server = configmod.require_server(cfg)
    host, port = parse_listen(args.listen)
    root = Path(args.cache_dir).expanduser() if args.cache_dir else cfg.cache_dir / "serve"
    service = Service(cfg, server, Cache(root, parse_size(args.cache_size)))
    try:
        httpd = make_server(service, host, port)
    except OSError as exc:
        raise ClientError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print(f"darkclient: serving debuginfod on http://{host}:{httpd.server_address[1]}/ "
          f"(Darkserver {server}, cache {root})", file=err, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        service.close()
    return 0
