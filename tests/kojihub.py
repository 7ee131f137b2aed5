"""A small Koji hub of our own for the tests: real XML-RPC over real HTTP on 127.0.0.1.

It answers the calls the importer makes (getBuild, listBuildRPMs, getRPM, getRPMHeaders,
queryRPMSigs, listTagged, listBuilds, multiCall, getKojiVersion, system.listMethods) in the
shapes Koji's hub uses, and serves the rpm files in Koji's package layout
(``packages/NAME/VERSION/RELEASE/ARCH/FILE.rpm``, ``data/signed/KEY/ARCH/FILE.rpm``). The tests
drive it with the real ``koji.ClientSession``.

Header fields and the SIGMD5 are read with the ``rpm`` command, as Koji's hub reads them with
rpm's library, so none of Darkserver's own parsing is involved on this side.

Faults for the tests: ``fail_next`` (HTTP errors on a file), ``drop_next`` (the connection
closes half-way through a file), ``stall`` (a file is held until an event is set), ``hub_fail``
(5xx from the XML-RPC endpoint), ``corrupt`` (the served bytes no longer match the payloadhash).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import subprocess
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from koji import xmlrpcplus

BUILD_STATES = {"BUILDING": 0, "COMPLETE": 1, "DELETED": 2, "FAILED": 3, "CANCELED": 4}
GENERIC_FAULT = 1000  # koji.GenericError
PARAMETER_FAULT = 1019  # koji.ParameterError

# Header tags that are arrays (everything else is answered as a scalar, None when absent).
ARRAY_TAGS = {
    "FILENAMES", "BASENAMES", "DIRNAMES", "DIRINDEXES", "FILEMODES", "FILELINKTOS", "FILECLASS",
    "FILECOLORS", "FILEINODES", "FILEDEVICES", "FILESIZES", "LONGFILESIZES", "FILEFLAGS",
    "FILEDIGESTS", "PROVIDES", "PROVIDENAME", "PROVIDEVERSION", "REQUIRES", "REQUIRENAME",
}
INT_TAGS = {
    "DIRINDEXES", "FILEMODES", "FILECOLORS", "FILEINODES", "FILEDEVICES", "FILESIZES",
    "LONGFILESIZES", "FILEFLAGS", "EPOCH", "SIZE", "LONGSIZE", "BUILDTIME",
}


def rpm_query(path: Path, fmt: str) -> str:
    return subprocess.run(
        ["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, str(path)],
        capture_output=True, text=True, check=True,
    ).stdout


@dataclass
class Fault:
    remaining: int
    status: int = 503
    drop: bool = False


@dataclass
class KojiHub:
    """State of the fake Koji; start it with ``serve()``."""

    root: Path
    builds: dict[int, dict[str, Any]] = field(default_factory=dict)
    rpms: dict[int, dict[str, Any]] = field(default_factory=dict)
    rpm_files: dict[int, Path] = field(default_factory=dict)
    sigs: dict[int, list[str]] = field(default_factory=dict)
    tags: dict[str, list[int]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # GET paths, in order
    calls: list[str] = field(default_factory=list)  # XML-RPC method names, in order
    base: str = ""
    promoted_after_filter: bool = False  # listBuilds(promotedAfter=): newer than Koji 1.35
    latency: float = 0.0  # seconds added to every request (a remote hub, for benchmarks)
    bandwidth: float = 0.0  # bytes/s for file downloads; 0 = unlimited
    _faults: dict[str, Fault] = field(default_factory=dict)
    _stalls: dict[str, threading.Event] = field(default_factory=dict)
    _hub_faults: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _headers_cache: dict[tuple[int, str], Any] = field(default_factory=dict)

    @property
    def hub_url(self) -> str:
        return self.base + "/kojihub"

    @property
    def topurl(self) -> str:
        return self.base + "/kojifiles"

    # -- content ----------------------------------------------------------------------------

    def add_build(
        self,
        rpm_paths: list[Path],
        state: str = "COMPLETE",
        completion: dt.datetime | None = None,
        tags: tuple[str, ...] = (),
        volume: str = "DEFAULT",
        draft: bool = False,
    ) -> dict[str, Any]:
        """A build made of these rpm files (the source rpm named in their headers). A draft's
        release has Koji's ``,draft_ID`` suffix until ``promote``."""
        binaries = [p for p in rpm_paths if not p.name.endswith(".src.rpm")]
        srpm = rpm_query(binaries[0], "%{SOURCERPM}").strip()
        name, version, release = srpm.removesuffix(".src.rpm").rsplit("-", 2)
        with self._lock:
            build_id = 1000 + len(self.builds) + 1
        when = completion or dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            hours=build_id)
        build: dict[str, Any] = {
            "id": build_id, "build_id": build_id, "name": name, "package_name": name,
            "package_id": 1, "version": version, "release": release, "epoch": None,
            "nvr": f"{name}-{version}-{release}", "state": BUILD_STATES[state],
            "task_id": 50000 + build_id, "owner_id": 1, "owner_name": "tester",
            "volume_id": 0 if volume == "DEFAULT" else 1, "volume_name": volume,
            "creation_time": str(when - dt.timedelta(minutes=30)),
            "creation_ts": (when - dt.timedelta(minutes=30)).timestamp(),
            "completion_time": str(when), "completion_ts": when.timestamp(),
            "start_time": str(when - dt.timedelta(minutes=30)),
            "start_ts": (when - dt.timedelta(minutes=30)).timestamp(),
            "source": None, "extra": None, "draft": False, "cg_id": None, "cg_name": None,
            "promotion_time": None, "promotion_ts": None, "promoter_id": None,
            "promoter_name": None,
        }
        if draft:
            build["release"] = f"{release},draft_{build_id}"
            build["nvr"] = f"{name}-{version}-{build['release']}"
            build["draft"] = True
        self.builds[build_id] = build
        for path in binaries:
            self._add_rpm(build, path)
        for tag in tags:
            self.tags.setdefault(tag, []).append(build_id)
        return build

    def _add_rpm(self, build: dict[str, Any], path: Path) -> dict[str, Any]:
        fields = rpm_query(
            path, "%{NAME}|%{VERSION}|%{RELEASE}|%{EPOCH}|%{ARCH}|%{SIGMD5}|%{BUILDTIME}"
        ).split("|")
        name, version, release, epoch, arch, sigmd5, buildtime = fields
        rpm_id = 5000 + len(self.rpms) + 1
        info: dict[str, Any] = {
            "id": rpm_id, "build_id": build["id"], "name": name, "version": version,
            "release": release, "epoch": None if epoch == "(none)" else int(epoch), "arch": arch,
            "nvr": f"{name}-{version}-{release}", "size": path.stat().st_size,
            "payloadhash": sigmd5, "buildtime": int(buildtime), "buildroot_id": 1,
            "external_repo_id": 0, "external_repo_name": "INTERNAL", "metadata_only": False,
            "extra": None, "draft": build["draft"],
        }
        dest = self.build_dir(build) / arch / f"{name}-{version}-{release}.{arch}.rpm"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        self.rpms[rpm_id] = info
        self.rpm_files[rpm_id] = dest
        return info

    def build_dir(self, build: dict[str, Any]) -> Path:
        """Where the files are served; a draft's already under the release it is promoted to
        (Koji moves them on promotion; the importer never downloads a draft)."""
        vol = "" if build["volume_name"] == "DEFAULT" else f"vol/{build['volume_name']}/"
        release = build["release"].split(",draft_")[0]
        return self.root / f"{vol}packages/{build['name']}/{build['version']}/{release}"

    def promote(self, build_id: int, when: dt.datetime) -> dict[str, Any]:
        """What Koji's promoteBuild does to the build row (files stay where build_dir says)."""
        build = self.builds[build_id]
        assert build["draft"], "only drafts are promoted"
        build["release"] = build["release"].split(",draft_")[0]
        build["nvr"] = f"{build['name']}-{build['version']}-{build['release']}"
        build.update(draft=False, promotion_time=str(when), promotion_ts=when.timestamp(),
                     promoter_id=1, promoter_name="tester")
        for rpm in self.rpms.values():
            if rpm["build_id"] == build_id:
                rpm["draft"] = False
        return build

    def sign(self, rpm_id: int, key: str) -> Path:
        """Koji's signed copy: same header and payload (so the same SIGMD5) under data/signed."""
        info = self.rpms[rpm_id]
        build = self.builds[info["build_id"]]
        dest = (self.build_dir(build) / "data/signed" / key / info["arch"]
                / self.rpm_files[rpm_id].name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.rpm_files[rpm_id], dest)
        self.sigs.setdefault(rpm_id, []).append(key)
        return dest

    def corrupt(self, rpm_id: int, offset_from_end: int = 100) -> None:
        """Flip one payload byte of the served file: same size, different SIGMD5."""
        path = self.rpm_files[rpm_id]
        data = bytearray(path.read_bytes())
        data[-offset_from_end] ^= 0xFF
        path.write_bytes(bytes(data))

    def url_path(self, rpm_id: int) -> str:
        return "/kojifiles/" + str(self.rpm_files[rpm_id].relative_to(self.root))

    # -- faults -----------------------------------------------------------------------------

    def fail_next(self, rpm_id: int, times: int, status: int = 503) -> None:
        self._faults[self.url_path(rpm_id)] = Fault(times, status)

    def drop_next(self, rpm_id: int, times: int) -> None:
        self._faults[self.url_path(rpm_id)] = Fault(times, drop=True)

    def stall(self, rpm_id: int) -> threading.Event:
        event = threading.Event()
        self._stalls[self.url_path(rpm_id)] = event
        return event

    def hub_fail(self, times: int) -> None:
        self._hub_faults = times

    # -- XML-RPC ----------------------------------------------------------------------------

    def methods(self) -> dict[str, Callable[..., Any]]:
        return {
            "getBuild": self.getBuild, "listBuildRPMs": self.listBuildRPMs,
            "getRPM": self.getRPM, "getRPMHeaders": self.getRPMHeaders,
            "queryRPMSigs": self.queryRPMSigs, "listTagged": self.listTagged,
            "listBuilds": self.listBuilds, "getKojiVersion": lambda: "1.36.1",
            "getAPIVersion": lambda: 1, "system.listMethods": lambda: sorted(self.methods()),
        }

    def _build_of(self, info: int | str | dict[str, Any]) -> dict[str, Any] | None:
        if isinstance(info, dict):
            info = info.get("id") or info.get("nvr") or ""
        if isinstance(info, int):
            return self.builds.get(info)
        return next((b for b in self.builds.values() if b["nvr"] == info), None)

    def getBuild(self, buildInfo: int | str, strict: bool = False) -> dict[str, Any] | None:
        build = self._build_of(buildInfo)
        if build is None and strict:
            raise xmlrpc.client.Fault(GENERIC_FAULT, f"No such build: {buildInfo}")
        return build

    def listBuildRPMs(self, build: int | str) -> list[dict[str, Any]]:
        found = self._build_of(build)
        if found is None:
            raise xmlrpc.client.Fault(GENERIC_FAULT, f"No such build: {build}")
        return [r for r in self.rpms.values() if r["build_id"] == found["id"]]

    def getRPM(self, rpminfo: int | str, strict: bool = False, multibuild: bool = False
               ) -> dict[str, Any] | None:
        for info in self.rpms.values():
            if rpminfo in (info["id"], f"{info['nvr']}.{info['arch']}"):
                return info
        if strict:
            raise xmlrpc.client.Fault(GENERIC_FAULT, f"No such rpm: {rpminfo}")
        return None

    def getRPMHeaders(self, rpmID: int | None = None, taskID: int | None = None,
                      filepath: str | None = None, headers: list[str] | None = None,
                      strict: bool = False) -> dict[str, Any]:
        if rpmID not in self.rpm_files:
            if strict:
                raise xmlrpc.client.Fault(GENERIC_FAULT, f"No such rpm: {rpmID}")
            return {}
        return {name: self._header(rpmID, name) for name in headers or []}

    def _header(self, rpm_id: int, name: str) -> Any:
        key = (rpm_id, name.upper())
        if key not in self._headers_cache:
            tag = name.upper()
            path = self.rpm_files[rpm_id]
            value: Any
            if tag in ARRAY_TAGS:
                # One value per line, and a sentinel line so that empty strings survive.
                out = rpm_query(path, f"[%{{{tag}}}\\n]")
                value = out.split("\n")[:-1] if out else []
                if tag in INT_TAGS:
                    value = [int(v) for v in value]
            else:
                out = rpm_query(path, f"%{{{tag}}}")
                value = None if out == "(none)" else (int(out) if tag in INT_TAGS else out)
            self._headers_cache[key] = value
        return self._headers_cache[key]

    def preload_headers(self, names: list[str]) -> None:
        """Read these header fields of every rpm now: the test hub runs the rpm command per
        field, far slower than Koji's in-process header read, which benchmarks must not time."""
        for rpm_id in self.rpm_files:
            for name in names:
                self._header(rpm_id, name)

    def queryRPMSigs(self, rpm_id: int | None = None, sigkey: str | None = None,
                     queryOpts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [
            {"rpm_id": rid, "sigkey": key, "sighash": "0" * 32}
            for rid, keys in self.sigs.items() if rpm_id in (None, rid)
            for key in keys if sigkey in (None, key)
        ]

    def listTagged(self, tag: str, event: int | None = None, inherit: bool = False,
                   prefix: str | None = None, latest: bool = False, package: str | None = None,
                   owner: str | None = None, type: str | None = None) -> list[dict[str, Any]]:
        if tag not in self.tags:
            raise xmlrpc.client.Fault(GENERIC_FAULT, f"No such tagInfo: '{tag}'")
        found = [self.builds[b] | {"tag_name": tag} for b in self.tags[tag]]
        return [b for b in found if b["state"] == BUILD_STATES["COMPLETE"]]

    def listBuilds(self, state: int | None = None, completeAfter: float | str | None = None,
                   queryOpts: dict[str, Any] | None = None, draft: bool | None = None,
                   **other: Any) -> list[dict[str, Any]]:
        promoted_after = other.pop("promotedAfter", None)
        if promoted_after is not None and not self.promoted_after_filter:
            # Koji 1.35's listBuilds has no promotedAfter (a later release added it).
            raise xmlrpc.client.Fault(PARAMETER_FAULT, "ParameterError: listBuilds() got an "
                                      "unexpected keyword argument 'promotedAfter'")
        after = _timestamp(completeAfter)
        since = _timestamp(promoted_after)
        found = [
            b for b in self.builds.values()
            if (state is None or b["state"] == state)
            and (after is None or b["completion_ts"] > after)
            and (draft is None or b["draft"] == draft)
            and (since is None or (b["promotion_ts"] or 0) > since)
        ]
        opts = queryOpts or {}
        order = str(opts.get("order", "id"))
        # PostgreSQL sorts NULL after everything, ascending.
        found.sort(key=lambda b: (b[order.lstrip("-")] is None, b[order.lstrip("-")] or 0),
                   reverse=order.startswith("-"))
        offset = int(opts.get("offset", 0) or 0)
        limit = opts.get("limit")
        return found[offset: offset + int(limit) if limit is not None else None]

    def dispatch(self, method: str, params: tuple[Any, ...]) -> Any:
        self.calls.append(method)
        if method == "multiCall":
            results: list[Any] = []
            for call in params[0]:
                try:
                    results.append([self.dispatch(call["methodName"], tuple(call["params"]))])
                except xmlrpc.client.Fault as fault:
                    results.append({"faultCode": fault.faultCode,
                                    "faultString": fault.faultString})
            return results
        handler = self.methods().get(method)
        if handler is None:
            raise xmlrpc.client.Fault(GENERIC_FAULT, f"Invalid method: {method}")
        args = list(params)
        kwargs: dict[str, Any] = {}
        if args and isinstance(args[-1], dict) and args[-1].get("__starstar"):
            kwargs = {k: v for k, v in args.pop().items() if k != "__starstar"}
        try:
            return handler(*args, **kwargs)
        except TypeError as exc:
            raise xmlrpc.client.Fault(GENERIC_FAULT, f"{method}: {exc}") from exc

    # -- HTTP -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def serve(self, tls: tuple[Path, Path] | None = None) -> Iterator[KojiHub]:
        """Serve on 127.0.0.1; with ``tls`` = (certificate, key) over HTTPS."""
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle + delayed ACK add
            # 40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle(self) -> None:
                # A client that went away (a worker killed mid-download) is not a hub error.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if hub.latency:
                    time.sleep(hub.latency)
                if self.path != "/kojihub":
                    return self._plain(404, b"not found")
                with hub._lock:
                    failing = hub._hub_faults > 0
                    if failing:
                        hub._hub_faults -= 1
                if failing:
                    return self._plain(503, b"hub overloaded (injected)")
                try:
                    params, method = xmlrpc.client.loads(body, use_builtin_types=True)
                    result = hub.dispatch(method or "", params)
                    out = xmlrpcplus.dumps((result,), methodresponse=True, allow_none=True)
                except xmlrpc.client.Fault as fault:
                    out = xmlrpcplus.dumps(fault, methodresponse=True, allow_none=True)
                data = out.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Koji-Version", "1.36.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                hub.requests.append(path)
                if hub.latency:
                    time.sleep(hub.latency)
                stall = hub._stalls.get(path)
                if stall is not None:
                    stall.wait(60)
                with hub._lock:
                    fault = hub._faults.get(path)
                    if fault is not None and fault.remaining > 0:
                        fault.remaining -= 1
                    else:
                        fault = None
                if fault is not None and not fault.drop:
                    return self._plain(fault.status, b"injected failure")
                rel = path.removeprefix("/kojifiles/")
                file = (hub.root / rel).resolve()
                if not path.startswith("/kojifiles/") or not file.is_relative_to(
                        hub.root.resolve()) or not file.is_file():
                    return self._plain(404, b"not found")
                data = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-rpm")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault is not None:  # drop: half the body, then the connection goes away
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if hub.bandwidth:
                    step = max(1, int(hub.bandwidth / 20))
                    for at in range(0, len(data), step):
                        self.wfile.write(data[at: at + step])
                        time.sleep(len(data[at: at + step]) / hub.bandwidth)
                    return
                self.wfile.write(data)

            def _plain(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.base = f"http://127.0.0.1:{server.server_address[1]}"
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.base = f"https://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            for event in self._stalls.values():
                event.set()
            server.shutdown()
            server.server_close()
            thread.join(10)


def _timestamp(value: float | str | None) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


# -- real rpms for the test hub ---------------------------------------------------------------

_SPEC = """\
%define __spec_install_post %{{?__debug_package:%{{__debug_install_post}}}} %{{__os_install_post}}
Name: {name}
Version: {version}
Release: {release}
Summary: Darkserver Koji test build
License: MIT
%description
Test build.
{debug_package}
%package libs
Summary: A shared library installed without exec bits (so rpm makes no build-id link for it)
%description libs
Library.
%prep
%setup -c -T
%build
cat > prog.c <<'SRC'
#include <stdio.h>
int main(void) {{ puts("{name}-{version}-{release}"); return 0; }}
SRC
cat > lib.c <<'SRC'
const char *{ident}_id(void) {{ return "{name}-{version}-{release}"; }}
SRC
gcc -g -O1 -o {name} prog.c
gcc -g -O1 -shared -fPIC -o lib{ident}.so.1 lib.c
{nobuildid_build}
%install
mkdir -p %{{buildroot}}/usr/bin %{{buildroot}}/usr/lib64
install -m755 {name} %{{buildroot}}/usr/bin/{name}
ln %{{buildroot}}/usr/bin/{name} %{{buildroot}}/usr/bin/{name}-hardlink
install -m755 lib{ident}.so.1 %{{buildroot}}/usr/lib64/lib{ident}.so.1
{nobuildid_install}
{padding_install}
%files
/usr/bin/{name}
/usr/bin/{name}-hardlink
{nobuildid_files}
{padding_files}
%files libs
%attr(0644,root,root) /usr/lib64/lib{ident}.so.1
"""


def build_rpms(workdir: Path, name: str = "demo", version: str = "1.0",
               release: str = "1.fc40", debuginfo: bool = True,
               build_id_links: str = "compat", nobuildid: bool = False,
               padding_mb: int = 0) -> list[Path]:
    """Compile and package a small build with rpmbuild: NAME (a PIE with a hard link),
    NAME-libs (a 0644 shared library) and, with ``debuginfo``, NAME-debuginfo. Returns the
    binary rpms. ``build_id_links``: rpm's %_build_id_links (compat, separate, alldebug, none).
    ``nobuildid``: NAME also ships /usr/bin/NAME-noid, linked without a build-id note.
    ``padding_mb``: NAME also ships that many MiB of random bytes (benchmarks: a download and a
    payload to decompress of realistic size)."""
    top = workdir / f"rpmbuild-{name}-{version}-{release}"
    spec = top / f"{name}.spec"
    spec.parent.mkdir(parents=True, exist_ok=True)
    ident = name.replace("-", "_")
    spec.write_text(_SPEC.format(
        name=name, version=version, release=release, ident=ident,
        debug_package="%debug_package" if debuginfo else "",
        nobuildid_build=f"gcc -O1 -Wl,--build-id=none -o {name}-noid prog.c" if nobuildid else "",
        nobuildid_install=(f"install -m755 {name}-noid %{{buildroot}}/usr/bin/{name}-noid"
                           if nobuildid else ""),
        nobuildid_files=f"/usr/bin/{name}-noid" if nobuildid else "",
        padding_install=(f"mkdir -p %{{buildroot}}/usr/share/{name} && head -c {padding_mb}M "
                         f"/dev/urandom > %{{buildroot}}/usr/share/{name}/data.bin"
                         if padding_mb else ""),
        padding_files=f"/usr/share/{name}" if padding_mb else "",
    ))
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define",
         f"_build_id_links {build_id_links}", "--define", "_binary_payload w2.xzdio",
         "--define", "_missing_build_ids_terminate_build 0", str(spec)],
        check=True, capture_output=True, text=True,
    )
    return sorted((top / "RPMS").rglob("*.rpm"))


_RPM_CACHE: dict[tuple[str, str, str, bool, str, bool], list[Path]] = {}
_RPM_ROOT: list[Path] = []


def cached_rpms(name: str = "demo", version: str = "1.0", release: str = "1.fc40",
                debuginfo: bool = True, build_id_links: str = "compat",
                nobuildid: bool = False) -> list[Path]:
    """``build_rpms`` once per test run (rpmbuild takes a second or two per build)."""
    import atexit
    import tempfile

    key = (name, version, release, debuginfo, build_id_links, nobuildid)
    if key not in _RPM_CACHE:
        if not _RPM_ROOT:
            root = Path(tempfile.mkdtemp(prefix="darkserver-koji-rpms-"))
            atexit.register(shutil.rmtree, root, True)
            _RPM_ROOT.append(root)
        _RPM_CACHE[key] = build_rpms(_RPM_ROOT[0] / f"{len(_RPM_CACHE)}", name, version,
                                     release, debuginfo, build_id_links, nobuildid)
    return _RPM_CACHE[key]


def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it, made with openssl:
    (ca.pem, server.pem, server.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "s.csr"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for cmd in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=darkserver test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
         "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out",
         cert, "-days", "2", "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)
    return ca, cert, key


def instance_json(path: Path, hub: KojiHub, name: str = "test",
                  sigkeys: tuple[str, ...] = ()) -> Path:
    """A koji-instances file (the JSON form) naming this hub."""
    import json

    path.write_text(json.dumps({name: {"hub": hub.hub_url, "topurl": hub.topurl,
                                       "sigkeys": list(sigkeys)}}))
    return path
