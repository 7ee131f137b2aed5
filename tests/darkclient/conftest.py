"""Real parts for the client tests: programs compiled with gcc, cores made by gdb and by the
kernel, rpms made by rpmbuild, the real Darkserver on a live HTTP thread, and plain HTTP
servers on 127.0.0.1 standing in for mirror, Koji and archive."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import resource
import shutil
import socket
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from darkclient.elf import read_elf_path
from darkserver.lookup.models import Build, ElfFile, Package, path_key
from tests.helpers import live_app

MAIN_C = r"""
#include <signal.h>
#include <stdio.h>
int liba_twice(int);
int libb_add(int, int);
static int crash_here(int depth) {
    if (depth > 0) raise(SIGABRT);
    return depth;
}
int main(int argc, char **argv) {
    int v = libb_add(liba_twice(argc), 1);
    printf("%d\n", v);
    return crash_here(v);
}
"""
LIBA_C = "int liba_twice(int x) { return 2 * x; }\n"
LIBB_C = "int libb_add(int x, int y) { return x + y; }\n"


def run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120, **kw)


@dataclass(frozen=True)
class Program:
    dir: Path
    main: Path  # unstripped
    stripped: Path  # stripped copy of main
    debug: Path  # main's separate debug file (objcopy --only-keep-debug)
    liba: Path
    libb: Path
    main_id: str
    liba_id: str
    libb_id: str


@pytest.fixture(scope="session")
def program(tmp_path_factory: pytest.TempPathFactory) -> Program:
    d = tmp_path_factory.mktemp("prog")
    (d / "crashy.c").write_text(MAIN_C)
    (d / "liba.c").write_text(LIBA_C)
    (d / "libb.c").write_text(LIBB_C)
    run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-Wl,--build-id", "-o", "libdca.so", "liba.c"],
        cwd=d)
    run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-Wl,--build-id=md5", "-o", "libdcb.so",
         "libb.c"], cwd=d)
    run(["gcc", "-g", "-O0", "-Wl,--build-id", "-o", "crashy", "crashy.c", "-L.", "-ldca",
         "-ldcb", f"-Wl,-rpath,{d}"], cwd=d)
    run(["objcopy", "--only-keep-debug", "crashy", "crashy.debug"], cwd=d)
    run(["strip", "--strip-all", "-o", "crashy.stripped", "crashy"], cwd=d)

    def bid(p: Path) -> str:
        b = read_elf_path(p).build_id
        assert b is not None
        return b.hex()

    return Program(d, d / "crashy", d / "crashy.stripped", d / "crashy.debug",
                   d / "libdca.so", d / "libdcb.so",
                   bid(d / "crashy"), bid(d / "libdca.so"), bid(d / "libdcb.so"))


def gdb_core(binary: Path, out: Path) -> Path:
    """A core of ``binary`` written by gdb when it stops at SIGABRT."""
    proc = subprocess.run(
        ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
         "-ex", "set use-coredump-filter off", "-ex", "run",
         "-ex", f"generate-core-file {out}", str(binary)],
        capture_output=True, text=True, timeout=120, cwd=binary.parent)
    assert out.exists(), proc.stdout + proc.stderr
    return out


def kernel_core(binary: Path, workdir: Path) -> Path | None:
    """A core written by the kernel (ulimit -c unlimited, SIGABRT), when core_pattern allows."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern or "%" in pattern:
        return None  # piped to a crash collector, or elsewhere: not ours to fetch

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        with open("/proc/self/coredump_filter", "w") as f:
            f.write("0x33")  # anonymous + ELF headers, the kernel default

    workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(binary)], cwd=workdir, preexec_fn=limits, capture_output=True,
                   timeout=60)
    for name in (pattern, f"{pattern}.*"):
        found = sorted(workdir.glob(name))
        if found:
            return found[0]
    return None


@pytest.fixture(scope="session")
def cores(program: Program, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cores")
    out = {"gdb": gdb_core(program.main, d / "gdb.core"),
           "stripped": gdb_core(program.stripped, d / "stripped.core")}
    k = kernel_core(program.main, d / "kernel")
    if k is not None:
        out["kernel"] = k
    return out


# --- rpms --------------------------------------------------------------------------------------

SPEC = """\
%global debug_package %{{nil}}
%global __os_install_post %{{nil}}
%global _build_id_links none
Name: crashy
Version: 1.0
Release: 1.fc40
Summary: a program that crashes
License: MIT
BuildArch: x86_64
%description
crashes
%package debuginfo
Summary: debug info for crashy
%description debuginfo
debug info
%install
mkdir -p %{{buildroot}}/usr/bin %{{buildroot}}/usr/lib/debug/usr/bin
install -m 0755 {stripped} %{{buildroot}}/usr/bin/crashy
install -m 0644 {debug} %{{buildroot}}/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug
%files
/usr/bin/crashy
%files debuginfo
/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug
"""


@dataclass(frozen=True)
class Rpms:
    main: Path
    debuginfo: Path


@pytest.fixture(scope="session")
def rpms(program: Program, tmp_path_factory: pytest.TempPathFactory) -> Rpms:
    top = tmp_path_factory.mktemp("rpmbuild")
    spec = top / "crashy.spec"
    spec.write_text(SPEC.format(stripped=program.stripped, debug=program.debug))
    run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_binary_payload w9.xzdio",
         str(spec)])
    rpmdir = top / "RPMS" / "x86_64"
    return Rpms(rpmdir / "crashy-1.0-1.fc40.x86_64.rpm",
                rpmdir / "crashy-debuginfo-1.0-1.fc40.x86_64.rpm")


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

    handler = functools.partial(Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield FileServer(f"http://127.0.0.1:{httpd.server_address[1]}", root, log)
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
        ElfFile.objects.create(package=pkg, build_id=bytes.fromhex(bid), path=path,
                               path_key=path_key(path), elf_type=3, machine=62, debug=debug)
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
    return {"main_url": main_url, "debug_url": debug_url}


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
             "timeout = 5\n", extra]
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
