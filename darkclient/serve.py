"""``darkclient serve``: a local debuginfod-compatible endpoint in front of Darkserver.

The whole protocol as elfutils clients use it: ``/buildid/HEX/debuginfo`` and ``/executable``
(looked up on the Darkserver, a download URL resolved - mirror, Koji, archive - the package
downloaded and the one member extracted and checked against its build-id), ``/source/PATH``
(from the build's -debugsource package, which the server names), ``/section/NAME`` (from the
debug file, else the executable). Headers: X-DEBUGINFOD-FILE (basename), -SIZE, -ARCHIVE and
Last-Modified (the member's time). 404 unknown, 502 package or URL failure, 503 Darkserver
unreachable, the reason in the body and in one log line per request. Files are kept in a
bounded on-disk cache, evicted least recently used first; 404s are remembered for a minute so
a debugger asking again and again costs one lookup. The Darkserver itself stays
metadata-only: packages are fetched here, on the debugging machine.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast
from urllib.parse import unquote

from darkclient import config as configmod
from darkclient.debugdir import extract_tree
from darkclient.download import download_spooled
from darkclient.errors import ClientError, ConfigError
from darkclient.fetch import Job, pick, run_jobs
from darkclient.lookup import Match, lookup
from darkclient.sources import SOURCE_ROOT, pick_source, source_docs
from darkclient.urls import Resolver, candidates, make_session
from darkcore import buildid, settings
from darkcore.elf import read_section
from darkcore.errors import PackageError
from darkcore.paths import PathRejected, normalize_member_path

MISS_TTL = 60.0
def parse_size(text: str) -> int:
    try:
        return settings.parse_size(text)
    except ValueError:
        raise ConfigError(f"bad size {text!r} (use e.g. 500M or 2G)") from None


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
                    f.with_suffix(".json").unlink()  # source files extracted have none
                with contextlib.suppress(OSError):
                    f.unlink()
                total -= size
            for d in self.root.iterdir():
                with contextlib.suppress(OSError):
                    d.rmdir()  # only succeeds when empty


@dataclass(slots=True)
class Reply:
    """One debuginfod answer: a file with its headers, or a status with the reason."""

    status: int
    reason: str = ""
    path: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _file_headers(member: str, archive: str, mtime: int) -> dict[str, str]:
    headers = {"X-DEBUGINFOD-FILE": posixpath.basename(member) or member,
               "X-DEBUGINFOD-ARCHIVE": archive}
    if mtime > 0:
        headers["Last-Modified"] = formatdate(mtime, usegmt=True)
    return headers


def _key(text: str) -> str:
    """A file name for any text (a section name, a source path)."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


class Service:
    def __init__(self, cfg: configmod.Config, server: str, cache: Cache) -> None:
        self.cfg = cfg
        self.server = server
        self.cache = cache
        self.session = make_session()
        self.resolver = Resolver(cfg, self.session)
        self._misses: dict[tuple[str, str], tuple[float, Reply]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def fetch(self, build_id: str, kind: str, arg: str = "") -> Reply:
        """The answer to /buildid/ID/KIND[/ARG]: from the cache, or fetched and cached."""
        name = kind if kind in ("debuginfo", "executable") else f"{kind}-{_key(arg)}"
        key = (build_id, name)
        with self._lock_for(key):
            hit = self.cache.get(build_id, name)
            if hit:
                return Reply(200, "", hit[0], hit[1])
            miss = self._misses.get(key)
            if miss and miss[0] > time.time():
                return miss[1]
            if kind == "section":
                reply = self._section(build_id, arg, name)
            elif kind == "source":
                reply = self._source(build_id, arg, name)
            else:
                reply = self._file(build_id, kind)
            if reply.status == 404:  # an upstream failure (502/503) is worth asking again
                self._misses[key] = (time.time() + MISS_TTL, reply)
            return reply

    def _matches(self, build_id: str) -> list[Match] | Reply:
        try:
            result = lookup(self.session, self.server, [build_id], self.cfg.timeout)
        except ClientError as exc:
            return Reply(503, str(exc))
        matches = result.results.get(build_id, [])
        if not matches:
            return Reply(404, f"build-id {build_id} unknown to {self.server}")
        return matches

    def _url(self, match: Match) -> str | Reply:
        res = self.resolver.resolve_many([candidates(match, self.cfg)])[0]
        if res.url is None:
            nvra = (match.get("package") or {}).get("nvra")
            tried = "; ".join(f"{c.url}: {c.error}" for c in res.checks) or "no candidate URL"
            return Reply(502, f"no download URL answered for {nvra} ({tried})")
        return res.url

    def _file(self, build_id: str, kind: str) -> Reply:
        matches = self._matches(build_id)
        if isinstance(matches, Reply):
            return matches
        match = pick(matches, kind == "debuginfo")
        if match is None:
            return Reply(404, f"no {kind} file known for {build_id}")
        url = self._url(match)
        if isinstance(url, Reply):
            return url
        dest = self.cache.path(build_id, kind)
        outcome = run_jobs(self.session, [Job(build_id, match, url, dest)],
                           max(self.cfg.timeout, 30.0))[0]
        if not outcome.ok:
            return Reply(502, outcome.error)
        os.utime(dest)  # the LRU clock; the member's own time goes to Last-Modified
        headers = _file_headers(str(match.get("path") or ""), url, outcome.mtime)
        self.cache.put_meta(build_id, kind, headers)
        return Reply(200, "", dest, headers)

    def _section(self, build_id: str, section: str, name: str) -> Reply:
        """debuginfod's rule: the section from the debuginfo file when it has contents there,
        else from the executable."""
        reasons = []
        for kind in ("debuginfo", "executable"):
            got = self.fetch(build_id, kind)
            if got.path is None:
                if got.status != 404:
                    return got
                reasons.append(got.reason)
                continue
            try:
                with open(got.path, "rb") as f:
                    data = read_section(f, section)
            except (OSError, PackageError) as exc:
                return Reply(502, f"{kind} of {build_id}: {exc}")
            if data is None:
                reasons.append(f"the {kind} file has no section {section} with contents")
                continue
            dest = self.cache.path(build_id, name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            headers = dict(got.headers)
            self.cache.put_meta(build_id, name, headers)
            return Reply(200, "", dest, headers)
        return Reply(404, f"section {section} of {build_id}: " + "; ".join(reasons))

    def _source(self, build_id: str, wanted: str, name: str) -> Reply:
        matches = self._matches(build_id)
        if isinstance(matches, Reply):
            return matches
        try:
            docs = source_docs(self.session, self.server, build_id, self.cfg.timeout)
        except ClientError as exc:
            return Reply(503, str(exc))
        arch = str((matches[0].get("package") or {}).get("arch") or "")
        doc = pick_source(docs, arch)
        if doc is None:
            return Reply(404, f"no source package known for the build of {build_id}")
        nvra = str(doc["package"].get("nvra") or "")
        tree = self._source_tree(doc)
        if isinstance(tree, Reply):
            return tree
        found = _find_source(tree, wanted)
        if found is None:
            return Reply(404, f"{wanted} is not in {nvra}")
        path, entry = found
        headers = _file_headers(path, str(entry["archive"]), int(entry["mtime"]))
        dest = self.cache.path(build_id, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(self.cache.root / str(entry["file"]), dest)
        except OSError:  # evicted from the cache since: extracted again on the next request
            with contextlib.suppress(OSError):
                (self.cache.root / str(entry["file"])).parent.joinpath("index.json").unlink()
            return Reply(503, f"{path}: evicted from the cache, ask again")
        self.cache.put_meta(build_id, name, headers)
        return Reply(200, "", dest, headers)

    def _source_tree(self, doc: Match) -> dict[str, dict[str, Any]] | Reply:
        """{install path: {file, mtime, archive}} of a source package, extracted once into
        the cache (under src-KEY/) however many build-ids and files are asked for."""
        nvra = str(doc["package"].get("nvra") or "")
        folder = f"src-{_key(nvra)}"
        index = self.cache.root / folder / "index.json"
        with self._lock_for(("source", nvra)):
            with contextlib.suppress(OSError, ValueError):
                tree: dict[str, dict[str, Any]] = json.loads(index.read_text())
                return tree
            url = self._url(doc)
            if isinstance(url, Reply):
                return url
            timeout = max(self.cfg.timeout, 30.0)
            try:
                with download_spooled(self.session, url, doc["package"], timeout) as stream:
                    files = extract_tree(
                        cast(BinaryIO, stream), SOURCE_ROOT,
                        lambda p: self.cache.root / folder / _key(p))
            except (ClientError, PackageError, OSError) as exc:
                return Reply(502, f"{nvra}: {exc}")
            tree = {path: {"file": f"{folder}/{dest.name}", "mtime": mtime, "archive": url}
                    for path, dest, mtime in files}
            index.parent.mkdir(parents=True, exist_ok=True)
            index.write_text(json.dumps(tree))
            return tree


def _find_source(tree: dict[str, dict[str, Any]], wanted: str) -> tuple[str, dict[str, Any]] \
        | None:
    """A path as it is in the package; else (a DWARF name relative to its comp_dir, or a
    build directory other than /usr/src/debug) by its trailing components, when exactly one
    file of the package ends that way."""
    try:
        path = normalize_member_path(wanted)
    except PathRejected:
        return None
    if path in tree:
        return path, tree[path]
    tail = [p for p in tree if p.endswith(path)]
    return (tail[0], tree[tail[0]]) if len(tail) == 1 else None


KINDS = ("debuginfo", "executable", "source", "section")
USAGE = ("this endpoint serves /buildid/HEX/debuginfo, /buildid/HEX/executable, "
         "/buildid/HEX/source/PATH and /buildid/HEX/section/NAME")


def parse_request(target: str) -> tuple[str, str, str] | str:
    """(build-id, kind, argument) of a debuginfod request path, or why it is not one."""
    path = target.split("?", 1)[0]
    parts = path.split("/", 4)  # "", "buildid", ID, KIND, rest
    if len(parts) < 4 or parts[0] or parts[1] != "buildid" or parts[3] not in KINDS:
        return f"not found: {USAGE}"
    try:
        build_id = buildid.normalize_build_id(parts[2])
    except buildid.BadBuildId as exc:
        return str(exc)
    kind = parts[3]
    rest = unquote(parts[4]) if len(parts) == 5 else ""
    if kind in ("debuginfo", "executable"):
        return (build_id, kind, "") if len(parts) == 4 else f"not found: {USAGE}"
    if not rest:
        return f"not found: /buildid/HEX/{kind}/ needs a {'path' if kind == 'source' else 'name'}"
    if kind == "source" and not rest.startswith("/"):
        rest = "/" + rest  # debuginfod clients append the absolute path after ".../source"
    return build_id, kind, rest


class Handler(BaseHTTPRequestHandler):
    server_version = "darkclient-debuginfod/1"
    service: Service  # set on the subclass made by make_server
    log: TextIO | None = None  # one line per request goes here (set by make_server)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the one line per request is written by _answer, with the reason

    def _line(self, status: int, started: float, reason: str) -> None:
        if self.log is not None:
            took = time.monotonic() - started
            text = f"{self.command} {self.path} {status} {took:.3f}s"
            print(f"{text} {reason}" if reason else text, file=self.log, flush=True)

    def _text(self, status: int, message: str, body: bool) -> None:
        data = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _answer(self, body: bool) -> None:
        started = time.monotonic()
        parsed = parse_request(self.path)
        if isinstance(parsed, str):
            self._text(404, parsed, body)
            self._line(404, started, parsed)
            return
        build_id, kind, arg = parsed
        reply = self.service.fetch(build_id, kind, arg)
        if reply.status != 200 or reply.path is None:
            self._text(reply.status, reply.reason, body)
            self._line(reply.status, started, reply.reason)
            return
        try:
            f = open(reply.path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            reason = f"{build_id}: evicted from the cache, ask again"
            self._text(503, reason, body)
            self._line(503, started, reason)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("X-DEBUGINFOD-SIZE", str(size))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                shutil.copyfileobj(f, self.wfile, 1 << 20)
        self._line(200, started, reply.headers.get("X-DEBUGINFOD-FILE", ""))

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._answer(True)

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self._answer(False)


def make_server(service: Service, host: str, port: int,
                log: TextIO | None = None) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"service": service, "log": log})
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
        httpd = make_server(service, host, port, err)
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
