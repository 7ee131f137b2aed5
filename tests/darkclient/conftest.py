"""Real parts for the client tests: programs compiled with gcc, cores made by gdb and by the
kernel, rpms made by rpmbuild, the real Darkserver on a live HTTP thread, and plain HTTP
servers on 127.0.0.1 standing in for mirror, Koji and archive."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import shutil
import socket
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from darkcore.elf import read_elf_path
from darkimport import samples
from darkserver.lookup.models import Build, ElfFile, Package
from darkserver.lookup.models import Path as PathRow
from tests.helpers import live_app
from tests.programs import (
    LIBA_C,
    LIBB_C,
    MAIN_C,
    SPEC,
    Program,
    Rpms,
    gdb_core,
    kernel_core,
    run,
)

__all__ = ["LIBA_C", "LIBB_C", "MAIN_C", "SPEC", "Program", "Rpms", "gdb_core", "kernel_core",
           "run"]

# --- rpms --------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- HTTP stand-ins ----------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@dataclass
class FileServer:
    url: str
    root: Path
    requests: list[tuple[str, str]]  # (method, path)


@contextlib.contextmanager
def file_server(root: Path) -> Iterator[FileServer]:
    """http.server on 127.0.0.1 serving ``root``; records every request."""
    log: list[tuple[str, str]] = []

    class Handler(_Quiet):
        def do_GET(self) -> None:  # noqa: N802
            log.append(("GET", self.path))
            super().do_GET()

        def do_HEAD(self) -> None:  # noqa: N802
            log.append(("HEAD", self.path))
            super().do_HEAD()

    with serving(functools.partial(Handler, directory=str(root))) as url:
        yield FileServer(url, root, log)


@contextlib.contextmanager
def serving(handler: Any) -> Iterator[str]:
    """A threading http.server on 127.0.0.1 with ``handler``; its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def koji(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "koji"
    root.mkdir()
    with file_server(root) as s:
        yield s


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "mirror"
    root.mkdir()
    with file_server(root) as s:
        yield s


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "archive"
    root.mkdir()
    with file_server(root) as s:
        yield s


@contextlib.contextmanager
def hanging_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def loop() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(sock.accept()[0])

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        t.join()
        for c in accepted:
            c.close()
        sock.close()


@pytest.fixture
def hanging() -> Iterator[str]:
    with hanging_server() as url:
        yield url


@pytest.fixture
def dead_url() -> str:
    """A URL on a port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the real Darkserver -----------------------------------------------------------------------


@pytest.fixture
def darkserver(transactional_db: None) -> Iterator[str]:
    """The real Darkserver app on a live HTTP thread sharing the test database; its base URL."""
    with live_app() as url:
        yield url


def add_package(nvra_name: str, build: Build, rpm: Path | None, url: str,
                elves: list[tuple[str, str, bool]], *, size: int | None = None,
                sha: str | None = None, filename: str | None = None) -> Package:
    """Rows for one package: ``elves`` are (build-id hex, install path, debug)."""
    nvra = f"{nvra_name}-{build.version}-{build.release}.x86_64"
    pkg = Package.objects.create(
        build=build, kind="rpm", nvra=nvra, name=nvra_name, epoch=None,
        version=build.version, release=build.release, arch="x86_64",
        filename=filename or f"{nvra}.rpm",
        size=size if size is not None else (rpm.stat().st_size if rpm else 0),
        sha256=sha if sha is not None else (sha256(rpm) if rpm else ""), url=url)
    for bid, path, debug in elves:
        ElfFile.objects.create(package=pkg, build_id=bytes.fromhex(bid),
                               path=PathRow.of(path, bytes.fromhex(bid), pkg.name),
                               elf_type=3, machine=62, debug=debug)
    return pkg


def make_build(name: str = "crashy", version: str = "1.0", release: str = "1.fc40",
               instance: str = "primary") -> Build:
    return Build.objects.create(instance=instance, name=name, version=version, release=release,
                                distro="fc40")


@pytest.fixture
def crashy_rows(transactional_db: None, rpms: Rpms, program: Program,
                koji: FileServer) -> dict[str, Any]:
    """crashy and crashy-debuginfo known to the server; both rpms on the Koji stand-in."""
    build = make_build()
    main_url = copy_to(koji, rpms.main, "packages/crashy/1.0/1.fc40/x86_64")
    debug_url = copy_to(koji, rpms.debuginfo, "packages/crashy/1.0/1.fc40/x86_64")
    add_package("crashy", build, rpms.main, main_url,
                [(program.main_id, "/usr/bin/crashy", False)])
    add_package("crashy-debuginfo", build, rpms.debuginfo, debug_url,
                [(program.main_id, "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug",
                  True)])
    source_url = copy_to(koji, rpms.debugsource, "packages/crashy/1.0/1.fc40/x86_64")
    add_package("crashy-debugsource", build, rpms.debugsource, source_url, [])
    return {"main_url": main_url, "debug_url": debug_url, "source_url": source_url}


@pytest.fixture
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated client: no user config, its own cache dir, no proxies. Returns the config
    file path (absent until a test writes it)."""
    conf = tmp_path / "darkclient.conf"
    monkeypatch.setenv("DARKCLIENT_CONF", str(conf))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DARKSERVER_URL", raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    write_conf(conf, tmp_path / "cache", {})
    return conf


def write_conf(conf: Path, cache: Path, templates: dict[str, list[str]],
               extra: str = "", check_timeout: float = 2.0) -> None:
    lines = [f"[darkclient]\ncache_dir = {cache}\ncheck_timeout = {check_timeout}\n"
             # Generous: a loaded 2-core machine once kept the live server from answering in 5 s.
             "timeout = 30\n", extra]
    # Replace the Fedora defaults entirely: no test may reach the internet.
    lines.append("[urls fc]\n")
    for kind in ("mirror", "mirror_debug", "koji", "koji_debug", "archive", "archive_debug"):
        values = templates.get(kind, templates.get(kind.removesuffix("_debug"), []))
        lines.append(f"{kind} =" + "".join(f"\n    {v}" for v in values) + "\n")
    conf.write_text(textwrap.dedent("".join(lines)))


def copy_to(server: FileServer, rpm: Path, subdir: str = "") -> str:
    """Put ``rpm`` on ``server`` (under subdir) and return its URL."""
    dest = server.root / subdir / rpm.name if subdir else server.root / rpm.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rpm, dest)
    rel = f"{subdir}/{rpm.name}" if subdir else rpm.name
    return f"{server.url}/{rel}"


@pytest.fixture(autouse=True)
def _no_debuginfod_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEBUGINFOD_URLS", raising=False)
    os.environ.pop("DEBUGINFOD_URLS", None)


# --- one package per payload kind ----------------------------------------------------------

DEBUG_PATH = "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug"


@dataclass(frozen=True)
class PayloadKind:
    package: Path
    build_id: str
    member: str  # the install path as the server stores it (normalised)
    content: bytes  # the member's bytes


def _odd_names_deb(path: Path, program: Program) -> Path:
    """A deb whose member is named "./usr/lib/debug//.build-id/./xx/rest.debug" (tar as
    Python writes it, ar as dpkg lays it out); the server stores the normalised path."""
    from tests.darkcore.archive_tools import assemble_deb, tar_bytes

    bid = program.main_id
    name = f"./usr/lib/debug//.build-id/./{bid[:2]}/{bid[2:]}.debug"
    fields = {"Package": "crashy-dbgsym", "Version": "1.0-1", "Architecture": "amd64"}
    return assemble_deb(path, tar_bytes([(name, program.debug.read_bytes())]), "data.tar", fields)


@pytest.fixture(scope="session")
def payload_kinds(program: Program, large_rpm: Path, sample_elves: list[samples.SampleElf],
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, PayloadKind]:
    """Every payload the importer reads, in a real package holding one debug file: rpms by
    rpmbuild (gzip, bzip2, xz, lzma, zstd, uncompressed without a PAYLOADCOMPRESSOR tag),
    the stripped-cpio rpm (a 4 GiB member), debs by dpkg-deb (gz, xz, zst, bz2, none) and a
    deb whose member name has "//" and "/./"."""
    work = tmp_path_factory.mktemp("payloads")
    bid = program.main_id
    data = program.debug.read_bytes()
    kinds: dict[str, PayloadKind] = {}
    for comp in ("gzip", "bzip2", "xz", "lzma", "zstd", "none"):
        rpm = samples.build_rpm(work, "crashy-debuginfo", "1.0", "1.fc40",
                                [(program.debug, DEBUG_PATH)], comp)
        kinds[f"rpm-{comp}"] = PayloadKind(rpm, bid, DEBUG_PATH, data)
    deb_path = f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug"
    for comp in samples.DEB_COMPRESSIONS:
        deb = samples.build_deb(work, "crashy-dbgsym", "1.0-1", "amd64",
                                [(program.debug, deb_path)], comp)
        kinds[f"deb-{comp}"] = PayloadKind(deb, bid, deb_path, data)
    odd = work / "odd"
    odd.mkdir()
    kinds["deb-odd-names"] = PayloadKind(
        _odd_names_deb(odd / "crashy-dbgsym_1.0-1_amd64.deb", program), bid, deb_path, data)
    elf = next(e for e in sample_elves if e.label == "exec-sha1")
    assert elf.build_id is not None
    kinds["rpm-stripped-cpio"] = PayloadKind(large_rpm, elf.build_id, elf.install_path,
                                             elf.source.read_bytes())
    return kinds


def add_payload_kind(kind: PayloadKind, koji: FileServer) -> None:
    """Rows saying ``kind``'s member is the debug file of its build-id; the package on Koji."""
    build = make_build()
    url = copy_to(koji, kind.package)
    name = kind.package.name.split("_", 1)[0] if kind.package.suffix == ".deb" else \
        kind.package.name.removesuffix("-1.0-1.fc40.x86_64.rpm")
    add_package(name, build, kind.package, url, [(kind.build_id, kind.member, True)],
                filename=kind.package.name)


# --- a dwz'd debuginfo package ---------------------------------------------------------------

DWZ_C = r"""
#include <stdio.h>
struct shared_shape { int width, height; double scale; char label[32]; };
int show_FN(struct shared_shape *s) { return printf("%s %d\n", s->label, s->width); }
int main(void) { struct shared_shape s = {3, 4, 1.5, "FN"}; return show_FN(&s) < 0; }
"""
DWZ_PATH = "/usr/lib/debug/.dwz/dwzdemo-1.0-1.fc40.x86_64"


@dataclass(frozen=True)
class DwzDemo:
    stripped: Path  # program "a", stripped
    ids: dict[str, str]  # "a", "b", "dwz" -> build-id
    paths: dict[str, str]  # the same -> install path in the debuginfo rpm
    debuginfo: Path  # the rpm: a's and b's debug files, their common dwz file


@pytest.fixture(scope="session")
def dwz_demo(tmp_path_factory: pytest.TempPathFactory) -> DwzDemo:
    """Two programs sharing a struct; their debug files made by objcopy, then `dwz -m` moves
    the shared DWARF into one file that both name in .gnu_debugaltlink (as Fedora ships)."""
    d = tmp_path_factory.mktemp("dwz")
    for name in ("a", "b"):
        (d / f"{name}.c").write_text(DWZ_C.replace("FN", name))
        run(["gcc", "-g", "-O0", "-Wl,--build-id", "-o", name, f"{name}.c"], cwd=d)
        run(["objcopy", "--only-keep-debug", name, f"{name}.debug"], cwd=d)
        run(["strip", "--strip-all", "-o", f"{name}.stripped", name], cwd=d)
    run(["dwz", "-m", "common.dwz", "-M", DWZ_PATH, "a.debug", "b.debug"], cwd=d)

    def bid(p: Path) -> str:
        info = read_elf_path(p)
        assert info is not None and info.build_id is not None
        return info.build_id.hex()

    ids = {"a": bid(d / "a"), "b": bid(d / "b"), "dwz": bid(d / "common.dwz")}
    paths = {"a": "/usr/lib/debug/usr/bin/a-1.0-1.fc40.x86_64.debug",
             "b": "/usr/lib/debug/usr/bin/b-1.0-1.fc40.x86_64.debug", "dwz": DWZ_PATH}
    files = {"a": d / "a.debug", "b": d / "b.debug", "dwz": d / "common.dwz"}
    rpm = samples.build_rpm(d, "dwzdemo-debuginfo", "1.0", "1.fc40",
                            [(files[k], paths[k]) for k in files], "xz")
    return DwzDemo(d / "a.stripped", ids, paths, rpm)


def add_dwz_demo(demo: DwzDemo, koji: FileServer) -> None:
    url = copy_to(koji, demo.debuginfo)
    add_package("dwzdemo-debuginfo", make_build("dwzdemo"), demo.debuginfo, url,
                [(demo.ids[k], demo.paths[k], True) for k in ("a", "b", "dwz")])
