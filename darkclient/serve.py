"""``darkclient serve``: a local debuginfod-compatible endpoint in front of Darkserver.

The whole protocol as elfutils clients use it: ``/buildid/HEX/debuginfo`` and ``/executable``
(looked up on the Darkserver, a download URL resolved - mirror, Koji, archive - the package
downloaded and the one member extracted and checked against its build-id), ``/source/PATH``
(from the build's -debugsource package, which the server names), ``/section/NAME`` (from the
debug file, else the executable). Headers: X-DEBUGINFOD-FILE (basename), -SIZE, -ARCHIVE and
Last-Modified (the member's time). 404 unknown, 502 package or URL failure, 503 Darkserver
unreachable, the reason in the body and in one log line per request.

Costs, first time: a lookup (``GET /api/v1/buildid/ID``, reused 5 minutes, as is a build's
list of source packages; a source needs only that list when the build has one source package),
the package by a GET of its first candidate URL (the candidates are checked only when that
fails), read once: its ELF files and sources stay in memory (servecache.Packages), so the
package's other build-ids and files cost nothing more. Requests to the Darkserver and to an
http:// mirror go over kept connections (httpsession.py). An answer is sent from
memory and reaches the bounded on-disk cache after (servecache.Cache.put_behind); 404s are
remembered for a minute so a debugger asking again and again costs one lookup.
``POST /prefetch`` (``darkclient prefetch CORE``) hands over a core's build-ids up front. The
Darkserver itself stays metadata-only: packages are fetched here, on the debugging machine.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import posixpath
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO, cast
from urllib.parse import unquote

from darkclient import config as configmod
from darkclient.debugdir import Held, check_build_id, extract_files
from darkclient.download import download_spooled
from darkclient.errors import ClientError, ConfigError, DownloadError
from darkclient.fetch import pick
from darkclient.lookup import Match, lookup, lookup_one
from darkclient.servecache import Cache, Contents, Packages
from darkclient.sources import SOURCE_ROOT, pick_source, source_docs
from darkclient.urls import Resolver, candidates, host_of, make_session
from darkcore import buildid, settings
from darkcore.elf import read_elf_bytes, read_section
from darkcore.errors import PackageError
from darkcore.paths import PathRejected, normalize_member_path

MISS_TTL = 60.0
# A lookup's matches and a build's source packages are reused this long: a debugger asks
# debuginfo, then source files, then sections of the same build-ids within seconds.
ANSWER_TTL = 300.0
# Packages fetched at once for a prefetch: downloads overlap with reading other packages.
# With a mirror 20 ms away (bench_serve --mirror-ms 20) gdb waited 0.64 s for downloads the
# prefetch had not reached with four, 0.36 s with eight.
PREFETCH_WORKERS = 8
PREFETCH_BODY = 4 << 20  # bytes of a POST /prefetch body (some 50,000 build-ids)
ELF_MAGIC = b"\x7fELF"


def parse_size(text: str) -> int:
    try:
        return settings.parse_size(text)
    except ValueError:
        raise ConfigError(f"bad size {text!r} (use e.g. 500M or 2G)") from None


@dataclass(slots=True)
class Reply:
    """One debuginfod answer: a file with its headers, or a status with the reason."""

    status: int
    reason: str = ""
    path: Path | None = None  # the file to send, when ``data`` is None
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None  # the bytes to send (an answer not read back from the cache)

    def content(self) -> bytes:
        """The bytes of a 200 answer."""
        with _opened(self) as f:
            return f.read()


def _file_headers(member: str, archive: str, mtime: int) -> dict[str, str]:
    headers = {"X-DEBUGINFOD-FILE": posixpath.basename(member) or member,
               "X-DEBUGINFOD-ARCHIVE": archive}
    if mtime > 0:
        headers["Last-Modified"] = formatdate(mtime, usegmt=True)
    return headers


def _key(text: str) -> str:
    """A file name for any text (a section name, a source path)."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def _kept(path: str, data: bytes) -> bool:
    """What a package read is kept for: its ELF files (the next build-id asked for may be a
    sibling) and its sources."""
    return data.startswith(ELF_MAGIC) or path.startswith(SOURCE_ROOT)


class Service:
    def __init__(self, cfg: configmod.Config, server: str, cache: Cache,
                 held: int | None = None) -> None:
        """``held``: bytes of package contents kept in memory (default: half the cache)."""
        self.cfg = cfg
        self.server = server
        self.cache = cache
        self.packages = Packages(cache.limit // 2 if held is None else held)
        self.session = make_session()
        self.resolver = Resolver(cfg, self.session)
        self._misses: dict[tuple[str, str], tuple[float, Reply]] = {}
        self._answers: dict[tuple[str, str], tuple[float, Any]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="darkclient-serve")
        self._prefetch_pool = ThreadPoolExecutor(PREFETCH_WORKERS,
                                                 thread_name_prefix="darkclient-prefetch")
        self._spent = threading.local()  # {step: seconds} of the request on this thread

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._prefetch_pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()
        self.cache.close()  # answers given are on disk before serve exits

    def prefetch(self, build_ids: list[str]) -> None:
        """Fetch every id's debuginfo in the background, in the order given. A debugger asks
        for its modules one at a time, each request waiting for the last (gdb 13: never two
        at once), so serve learns a core's modules from its debugger one by one; told them
        all at once (``darkclient prefetch CORE``), it looks them up in one batch and fetches
        their packages side by side, ahead of the debugger's requests."""
        self._pool.submit(self._prefetch, list(dict.fromkeys(build_ids)))

    def _prefetch(self, build_ids: list[str]) -> None:
        try:
            result = lookup(self.session, self.server, build_ids, self.cfg.timeout)
        except ClientError:
            return  # the debugger's own requests will say why
        expiry = time.time() + ANSWER_TTL
        with self._guard:
            for bid in build_ids:
                matches = result.results.get(bid)
                self._answers[("matches", bid)] = (expiry, matches or self._unknown(bid))
        for bid in build_ids:
            if result.results.get(bid):
                self._prefetch_pool.submit(self.fetch, bid, "debuginfo")

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def fetch_timed(self, build_id: str, kind: str, arg: str = "") -> tuple[Reply, str]:
        """``fetch``, and where its time went ("lookup 7 ms, download 5 ms, ...": the steps
        this request waited for; "" when none, i.e. a cache hit)."""
        steps: dict[str, float] = {}
        self._spent.steps = steps
        try:
            reply = self.fetch(build_id, kind, arg)
        finally:
            self._spent.steps = None
        return reply, ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in steps.items())

    @contextlib.contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            steps = getattr(self._spent, "steps", None)
            if steps is not None:
                steps[step] = steps.get(step, 0.0) + time.monotonic() - started

    def fetch(self, build_id: str, kind: str, arg: str = "") -> Reply:
        """The answer to /buildid/ID/KIND[/ARG]: from the cache, or fetched and cached."""
        name = kind if kind in ("debuginfo", "executable") else f"{kind}-{_key(arg)}"
        key = (build_id, name)
        with self._lock_for(key):
            hit = self.cache.get(build_id, name)
            if hit is not None:
                return Reply(200, "", hit.path, hit.headers, hit.data)
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

    def _remembered(self, what: str, build_id: str, ask: Callable[[], Any]) -> Any:
        """``ask()``'s answer about ``build_id``, reused for ANSWER_TTL; a failure to ask (a
        Reply other than 404) is not remembered."""
        now = time.time()
        with self._guard:
            got = self._answers.get((what, build_id))
            if got is not None and got[0] > now:
                return got[1]
        value = ask()
        if not isinstance(value, Reply) or value.status == 404:
            with self._guard:
                if len(self._answers) > 100_000:
                    self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
                self._answers[(what, build_id)] = (now + ANSWER_TTL, value)
        return value

    def _matches(self, build_id: str) -> list[Match] | Reply:
        def ask() -> list[Match] | Reply:
            try:
                with self._timed("lookup"):
                    found = lookup_one(self.session, self.server, build_id, self.cfg.timeout)
            except ClientError as exc:
                return Reply(503, str(exc))
            return found or self._unknown(build_id)

        return cast(list[Match] | Reply, self._remembered("matches", build_id, ask))

    def _unknown(self, build_id: str) -> Reply:
        return Reply(404, f"build-id {build_id} unknown to {self.server}")

    def _source_docs(self, build_id: str) -> list[Match] | Reply:
        def ask() -> list[Match] | Reply:
            try:
                return source_docs(self.session, self.server, build_id, self.cfg.timeout)
            except ClientError as exc:
                return Reply(503, str(exc))

        return cast(list[Match] | Reply, self._remembered("sources", build_id, ask))

    def _download(self, match: Match) -> tuple[IO[bytes], str] | Reply:
        """The package of ``match`` and its URL: a GET of the first candidate straight away;
        only when that fails are the candidates checked (HEAD, mirror, Koji, archive)."""
        package = match.get("package") or {}
        timeout = max(self.cfg.timeout, 30.0)
        first = next((c.url for c in candidates(match, self.cfg)
                      if not self.resolver.dead.is_dead(host_of(c.url))), None)
        if first is not None:
            try:
                with self._timed("download"):
                    return download_spooled(self.session, first, package, timeout,
                                            self.cfg.check_timeout), first
            except DownloadError:
                pass  # not there, or not answering: ask every candidate
        with self._timed("URL checks"):
            res = self.resolver.resolve_many([candidates(match, self.cfg)])[0]
        if res.url is None:
            tried = "; ".join(f"{c.url}: {c.error}" for c in res.checks) or "no candidate URL"
            return Reply(502, f"no download URL answered for {package.get('nvra')} ({tried})")
        try:
            with self._timed("download"):
                return download_spooled(self.session, res.url, package, timeout), res.url
        except DownloadError as exc:
            return Reply(502, str(exc))

    def _contents(self, match: Match, need: set[str]) -> Contents | Reply:
        """The files of ``match``'s package, read once for however many build-ids and source
        files are asked of it (while memory holds it)."""
        package = match.get("package") or {}
        key = str(package.get("sha256") or package.get("nvra") or "")
        with self._lock_for(("package", key)):
            got = self.packages.get(key)
            if got is not None and need <= got.by_path.keys():
                return got
            down = self._download(match)
            if isinstance(down, Reply):
                return down
            stream, url = down
            try:
                with stream, self._timed("read"):
                    files = extract_files(cast(BinaryIO, stream), _kept, need,
                                          self.packages.limit)
            except (PackageError, OSError) as exc:
                return Reply(502, f"{package.get('nvra')}: {exc}")
            contents = Contents(files, url)
            self.packages.put(key, contents)
            return contents

    def _file(self, build_id: str, kind: str) -> Reply:
        matches = self._matches(build_id)
        if isinstance(matches, Reply):
            return matches
        match = pick(matches, kind == "debuginfo")
        if match is None:
            return Reply(404, f"no {kind} file known for {build_id}")
        member = str(match.get("path") or "")
        try:
            path = normalize_member_path(member)
        except PathRejected as exc:
            return Reply(502, str(exc))
        contents = self._contents(match, {path})
        if isinstance(contents, Reply):
            return contents
        held = contents.by_path.get(path)
        if held is None:
            return Reply(502, f"{member}: not in the package")
        error = check_build_id(member, partial(read_elf_bytes, held.data), build_id)
        if error:
            return Reply(502, error)
        return self._answered(build_id, kind, held.data,
                              _file_headers(member, contents.archive, held.mtime))

    def _answered(self, build_id: str, name: str, data: bytes,
                  headers: dict[str, str]) -> Reply:
        """The answer, sent from memory; the cache gets it after (Cache.put_behind)."""
        self.cache.put_behind(build_id, name, data, headers)
        return Reply(200, "", self.cache.path(build_id, name), headers, data)

    def _section(self, build_id: str, section: str, name: str) -> Reply:
        """debuginfod's rule: the section from the debuginfo file when it has contents there,
        else from the executable."""
        reasons = []
        for kind in ("debuginfo", "executable"):
            got = self.fetch(build_id, kind)
            if got.status != 200:
                if got.status != 404:
                    return got
                reasons.append(got.reason)
                continue
            try:
                with _opened(got) as f:
                    data = read_section(f, section)
            except (OSError, PackageError) as exc:
                return Reply(502, f"{kind} of {build_id}: {exc}")
            if data is None:
                reasons.append(f"the {kind} file has no section {section} with contents")
                continue
            return self._answered(build_id, name, data, dict(got.headers))
        return Reply(404, f"section {section} of {build_id}: " + "; ".join(reasons))

    def _source(self, build_id: str, wanted: str, name: str) -> Reply:
        # The build's source packages first: one is the answer (a build usually has one per
        # arch, and a module's build one arch). The lookup is asked only to choose among
        # several by the module's arch, or to say why there is none (an unknown id).
        with self._timed("source lookup"):
            docs = self._source_docs(build_id)
        if isinstance(docs, Reply):
            return docs
        doc = docs[0] if len(docs) == 1 else None
        if doc is None:
            matches = self._matches(build_id)
            if isinstance(matches, Reply):
                return matches
            doc = pick_source(docs, str((matches[0].get("package") or {}).get("arch") or ""))
        if doc is None:
            return Reply(404, f"no source package known for the build of {build_id}")
        nvra = str(doc["package"].get("nvra") or "")
        contents = self._contents(doc, set())
        if isinstance(contents, Reply):
            return contents
        sources = {p: h for p, h in contents.by_path.items() if p.startswith(SOURCE_ROOT)}
        found = _find_source(sources, wanted)
        if found is None:
            return Reply(404, f"{wanted} is not in {nvra}")
        path, held = found
        return self._answered(build_id, name, held.data,
                              _file_headers(path, contents.archive, held.mtime))


def _opened(reply: Reply) -> BinaryIO:
    """The contents of a 200 reply as a file (OSError when its file was evicted)."""
    if reply.data is not None:
        return io.BytesIO(reply.data)
    assert reply.path is not None  # a 200 has one or the other
    return open(reply.path, "rb")  # noqa: SIM115 - the caller closes it


def _find_source(tree: dict[str, Held], wanted: str) -> tuple[str, Held] | None:
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
    # Headers and body leave in separate writes: without TCP_NODELAY a keep-alive client's
    # next answer waits for the delayed ACK of the previous one (~40 ms).
    disable_nagle_algorithm = True
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
        reply, steps = self.service.fetch_timed(build_id, kind, arg)
        if reply.status != 200:
            self._text(reply.status, reply.reason, body)
            self._line(reply.status, started, reply.reason)
            return
        try:
            f = _opened(reply)
        except OSError:
            reason = f"{build_id}: evicted from the cache, ask again"
            self._text(503, reason, body)
            self._line(503, started, reason)
            return
        with f:
            size = len(reply.data) if reply.data is not None else os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("X-DEBUGINFOD-SIZE", str(size))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if body and reply.data is not None:
                self.wfile.write(reply.data)
            elif body:
                shutil.copyfileobj(f, self.wfile, 1 << 20)
        served = reply.headers.get("X-DEBUGINFOD-FILE", "")
        self._line(200, started, f"{served} ({steps})" if steps else served)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._answer(True)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        """POST /prefetch {"buildids": [...]}: 202 at once, the fetching goes on behind."""
        started = time.monotonic()
        status, message = self._prefetch()
        body = json.dumps(message).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self._line(status, started, str(message.get("error") or
                                        f"prefetching {message.get('prefetching')}"))

    def _prefetch(self) -> tuple[int, dict[str, Any]]:
        if self.path.split("?", 1)[0] != "/prefetch":
            self.close_connection = True  # the body, if any, is left unread
            return 404, {"error": "not found: POST /prefetch is the one POST endpoint"}
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            self.close_connection = True
            return 411, {"error": "a Content-Length is required"}
        if not 0 <= length <= PREFETCH_BODY:
            self.close_connection = True
            return 413, {"error": f"more than {PREFETCH_BODY} bytes"}
        try:
            doc = json.loads(self.rfile.read(length))
            ids = [buildid.normalize_build_id(str(x)) for x in doc["buildids"]]
        except (ValueError, KeyError, TypeError, buildid.BadBuildId) as exc:
            return 400, {"error": f'want {{"buildids": [HEX, ...]}}: {exc}'}
        self.service.prefetch(ids)
        return 202, {"prefetching": len(set(ids))}

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
