"""darkclient serve: a debuginfod endpoint, checked with the real debuginfod-find and gdb."""

from __future__ import annotations

import io
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from darkclient import config as configmod
from darkclient.cli import main as cli_main
from darkclient.prefetch import core_build_ids
from darkclient.serve import Service, make_server, parse_size
from darkclient.servecache import Cache
from darkserver.lookup.models import Package
from tests.darkclient.conftest import (
    MAIN_C,
    FileServer,
    PayloadKind,
    Program,
    Rpms,
    add_package,
    add_payload_kind,
    copy_to,
    hanging_server,
    make_build,
    write_conf,
)
from tests.darkclient.test_debugdir import KINDS
from tests.programs import SOURCE_PATH


@pytest.fixture
def endpoint(darkserver: str, client_env: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cfg = configmod.load(darkserver)
    cache = tmp_path / "serve-cache"
    service = Service(cfg, darkserver, Cache(cache, 10 * 1024 * 1024))
    httpd = make_server(service, "127.0.0.1", 0)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", cache
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()


def find(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DEBUGINFOD_URLS": url,
                        "DEBUGINFOD_CACHE_PATH": str(tmp_path / "client-cache"),
                        "DEBUGINFOD_TIMEOUT": "20"}
    return subprocess.run(["debuginfod-find", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_debuginfod_find(endpoint: tuple[str, Path], crashy_rows: dict[str, Any],
                         program: Program, tmp_path: Path) -> None:
    url, cache = endpoint
    got = find(url, tmp_path, "debuginfo", program.main_id)
    assert got.returncode == 0, got.stderr
    assert Path(got.stdout.strip()).read_bytes() == program.debug.read_bytes()
    got = find(url, tmp_path, "executable", program.main_id)
    assert got.returncode == 0, got.stderr
    assert Path(got.stdout.strip()).read_bytes() == program.stripped.read_bytes()
    assert (cache / program.main_id / "debuginfo").read_bytes() == program.debug.read_bytes()
    # The source, from crashy-debugsource, by the path the DWARF names.
    got = find(url, tmp_path, "source", program.main_id, SOURCE_PATH)
    assert got.returncode == 0, got.stderr
    assert Path(got.stdout.strip()).read_text() == MAIN_C
    # A section: .debug_info from the debuginfo file, .text from the executable (NOBITS in
    # the debug file), each as objcopy dumps it.
    for section, elf in ((".debug_info", program.debug), (".text", program.stripped)):
        got = find(url, tmp_path, "section", program.main_id, section)
        assert got.returncode == 0, got.stderr
        assert Path(got.stdout.strip()).read_bytes() == section_bytes(elf, section), section
    # Unknown: a 404 debuginfod-find reports as "No such file or directory".
    got = find(url, tmp_path, "debuginfo", program.liba_id)
    assert got.returncode != 0 and "No such file" in got.stderr


def section_bytes(elf: Path, name: str) -> bytes:
    """A section's contents as objcopy extracts them (the oracle)."""
    out = elf.parent / f"{elf.name}{name}.bin"
    subprocess.run(["objcopy", "--dump-section", f"{name}={out}", str(elf), str(out) + ".o"],
                   check=True, capture_output=True)
    return out.read_bytes()


def rpm_mtime(rpm: Path, member: str) -> int:
    out = subprocess.run(["rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEMTIMES}\\n]", str(rpm)],
                         capture_output=True, text=True, check=True).stdout
    return int(dict(line.rsplit(" ", 1) for line in out.splitlines())[member])


def test_http_details(endpoint: tuple[str, Path], crashy_rows: dict[str, Any],
                      program: Program, rpms: Rpms) -> None:
    url, _ = endpoint
    r = requests.get(f"{url}/buildid/{program.main_id.upper()}/debuginfo", timeout=30)
    assert r.status_code == 200 and r.content == program.debug.read_bytes()
    assert r.headers["X-DEBUGINFOD-SIZE"] == str(len(r.content))
    assert r.headers["X-DEBUGINFOD-FILE"] == "crashy-1.0-1.fc40.x86_64.debug"  # a basename
    assert r.headers["X-DEBUGINFOD-ARCHIVE"] == crashy_rows["debug_url"]
    debug_member = "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug"
    assert parsedate_to_datetime(r.headers["Last-Modified"]).timestamp() == \
        rpm_mtime(rpms.debuginfo, debug_member)
    again = requests.get(f"{url}/buildid/{program.main_id}/debuginfo", timeout=30)  # cached
    assert again.headers["Last-Modified"] == r.headers["Last-Modified"]
    src = requests.get(f"{url}/buildid/{program.main_id}/source{quote(SOURCE_PATH)}", timeout=30)
    assert src.status_code == 200 and src.text == MAIN_C
    assert src.headers["X-DEBUGINFOD-FILE"] == "crashy.c"
    assert src.headers["X-DEBUGINFOD-ARCHIVE"] == crashy_rows["source_url"]
    assert parsedate_to_datetime(src.headers["Last-Modified"]).timestamp() == \
        rpm_mtime(rpms.debugsource, SOURCE_PATH)
    # A DWARF name relative to its comp_dir is found by its trailing components.
    rel = requests.get(f"{url}/buildid/{program.main_id}/source/crashy.c", timeout=30)
    assert rel.status_code == 200 and rel.text == MAIN_C
    missing = requests.get(f"{url}/buildid/{program.main_id}/source/usr/src/nope.c", timeout=30)
    assert missing.status_code == 404 and "nope.c is not in crashy-debugsource" in missing.text
    h = requests.head(f"{url}/buildid/{program.main_id}/executable", timeout=30)
    assert h.status_code == 200 and h.headers["Content-Length"] == \
        str(program.stripped.stat().st_size)
    for bad in ("/buildid/xyz/debuginfo", "/buildid/abc/debuginfo", "/",
                f"/buildid/{program.main_id}/other", f"/buildid/{program.main_id}/section/"):
        assert requests.get(url + bad, timeout=10).status_code == 404
    nosec = requests.get(f"{url}/buildid/{program.main_id}/section/.nothing", timeout=30)
    assert nosec.status_code == 404 and "no section .nothing" in nosec.text
    miss = requests.get(f"{url}/buildid/{program.liba_id}/debuginfo", timeout=30)
    assert miss.status_code == 404 and program.liba_id in miss.text


def test_gdb_through_debuginfod(endpoint: tuple[str, Path], crashy_rows: dict[str, Any],
                                program: Program, cores: dict[str, Path],
                                tmp_path: Path) -> None:
    url, _ = endpoint
    env = os.environ | {"DEBUGINFOD_URLS": url,
                        "DEBUGINFOD_CACHE_PATH": str(tmp_path / "gdb-cache")}
    proc = subprocess.run(
        ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled on",
         "-iex", f"set debug-file-directory {tmp_path / 'none'}",
         "-ex", "bt", "-ex", "frame function crash_here", "-ex", "list",
         str(program.stripped), str(cores["stripped"])],
        capture_output=True, text=True, env=env, timeout=180)
    out = proc.stdout + proc.stderr
    lines = MAIN_C.splitlines()
    raise_line = next(i for i, t in enumerate(lines, 1) if "raise(SIGABRT)" in t)
    assert f"in crash_here (depth=3) at crashy.c:{raise_line}" in out, out
    # `list` shows the source lines, fetched from crashy-debugsource through /source/.
    assert f"{raise_line}\t{lines[raise_line - 1]}" in out, out
    assert "No such file" not in out, out


def test_cache_is_bounded_lru(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache = Cache(root, limit=250)
    for i, name in enumerate(["aa", "bb"]):
        path = cache.put(name * 10, "debuginfo", b"x" * 100, {"X-DEBUGINFOD-FILE": name})
        os.utime(path, (1000 + i, 1000 + i))
    assert cache.total == 200
    hit = cache.get("aa" * 10, "debuginfo")  # a hit makes aa the newest
    assert hit is not None and hit.headers == {"X-DEBUGINFOD-FILE": "aa"}
    cache.put("cc" * 10, "debuginfo", b"y" * 100, {})
    left = sorted(p.name for p in root.iterdir())
    assert left == ["aa" * 10, "cc" * 10]  # bb was least recently used
    assert cache.total == 200
    # The count starts from what is on disk, and a replaced answer is counted once.
    again = Cache(root, limit=250)
    assert again.total == 200
    again.put("cc" * 10, "debuginfo", b"z" * 50, {})
    assert again.total == 150 and again.path("cc" * 10, "debuginfo").read_bytes() == b"z" * 50
    assert parse_size("2G") == 2 << 30 and parse_size("500M") == 500 << 20


def test_serve_command(darkserver: str, client_env: Path, crashy_rows: dict[str, Any],
                       program: Program, tmp_path: Path) -> None:
    """The console script itself: `darkclient serve --listen` in its own process."""
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "darkclient"
    proc = subprocess.Popen(
        [str(exe), "serve", "--listen", f"127.0.0.1:{port}", "--server", darkserver,
         "--cache-dir", str(tmp_path / "cache"), "--cache-size", "50M"],
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith(f"darkclient: serving debuginfod on http://127.0.0.1:{port}/")
        got = find(f"http://127.0.0.1:{port}", tmp_path, "debuginfo", program.main_id)
        assert got.returncode == 0, got.stderr
        assert Path(got.stdout.strip()).read_bytes() == program.debug.read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
    t0 = time.monotonic()
    bad = subprocess.run([str(exe), "serve", "--listen", "nonsense", "--server", darkserver],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and time.monotonic() - t0 < 30
    assert bad.stderr == "darkclient: --listen wants HOST:PORT, not 'nonsense'\n"


@pytest.mark.parametrize("kind", KINDS)
def test_every_payload_kind_served(endpoint: tuple[str, Path], koji: FileServer,
                                   payload_kinds: dict[str, PayloadKind], kind: str) -> None:
    """serve reads every payload the importer reads (darkcore's readers)."""
    k = payload_kinds[kind]
    add_payload_kind(k, koji)
    url, _ = endpoint
    r = requests.get(f"{url}/buildid/{k.build_id}/debuginfo", timeout=120)
    assert r.status_code == 200, r.text
    assert r.content == k.content


def test_upstream_failures_say_why(endpoint: tuple[str, Path], crashy_rows: dict[str, Any],
                                   koji: FileServer, program: Program, darkserver: str,
                                   client_env: Path, tmp_path: Path) -> None:
    """502 when the package cannot be fetched, 503 when Darkserver cannot be asked; the
    reason in the body, and one log line per request with status, time and reason."""
    url, _ = endpoint
    for f in koji.root.rglob("crashy-debuginfo-*.rpm"):
        f.unlink()
    r = requests.get(f"{url}/buildid/{program.main_id}/debuginfo", timeout=60)
    assert r.status_code == 502 and "crashy-debuginfo-1.0-1.fc40.x86_64" in r.text, r.text
    got = find(url, tmp_path, "debuginfo", program.main_id)
    assert got.returncode != 0
    log = io.StringIO()
    with hanging_server() as slow:
        cfg = configmod.load(slow)
        cfg.timeout = 1.0
        service = Service(cfg, slow, Cache(tmp_path / "c2", 1 << 20))
        httpd = make_server(service, "127.0.0.1", 0, log)
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            down = requests.get(f"http://127.0.0.1:{httpd.server_address[1]}/buildid/"
                                f"{program.main_id}/executable", timeout=60)
            requests.get(f"http://127.0.0.1:{httpd.server_address[1]}/nothing", timeout=10)
        finally:
            httpd.shutdown()
            httpd.server_close()
            service.close()
    assert down.status_code == 503 and "did not answer within 1 s" in down.text, down.text
    first, second = log.getvalue().splitlines()
    assert re.fullmatch(rf"GET /buildid/{program.main_id}/executable 503 \d+\.\d{{3}}s "
                        r"Darkserver at .* did not answer within 1 s", first), first
    assert second.startswith("GET /nothing 404 ") and "not found" in second


LIBS_SPEC = """\
%global debug_package %{{nil}}
%global __os_install_post %{{nil}}
%global _build_id_links none
Name: crashylibs
Version: 1.0
Release: 1.fc40
Summary: two libraries
License: MIT
BuildArch: x86_64
%description
libs
%install
mkdir -p %{{buildroot}}/usr/lib64
install -m 0755 {liba} %{{buildroot}}/usr/lib64/liba.so
install -m 0755 {libb} %{{buildroot}}/usr/lib64/libb.so
%files
/usr/lib64/liba.so
/usr/lib64/libb.so
"""


@pytest.fixture
def libs_rpm(program: Program, tmp_path: Path) -> Path:
    """One rpm holding two ELF files with their own build-ids (liba, libb)."""
    top = tmp_path / "rpmbuild"
    top.mkdir()
    spec = top / "libs.spec"
    spec.write_text(LIBS_SPEC.format(liba=program.liba, libb=program.libb))
    subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)],
                   check=True, capture_output=True)
    return top / "RPMS" / "x86_64" / "crashylibs-1.0-1.fc40.x86_64.rpm"


def test_package_read_once_for_its_siblings(endpoint: tuple[str, Path], koji: FileServer,
                                            program: Program, libs_rpm: Path) -> None:
    """The second build-id of a package is answered from the package read for the first: one
    GET for both, and no HEAD check before it (a GET of the first candidate is the check)."""
    url = copy_to(koji, libs_rpm)
    add_package("crashylibs", make_build("crashylibs"), libs_rpm, url,
                [(program.liba_id, "/usr/lib64/liba.so", False),
                 (program.libb_id, "/usr/lib64/libb.so", False)])
    base, _ = endpoint
    for bid, lib in ((program.liba_id, program.liba), (program.libb_id, program.libb)):
        r = requests.get(f"{base}/buildid/{bid}/executable", timeout=60)
        assert r.status_code == 200, r.text
        assert r.content == lib.read_bytes()
        assert r.headers["X-DEBUGINFOD-ARCHIVE"] == url
    assert koji.requests == [("GET", "/" + libs_rpm.name)]


def test_failed_direct_get_falls_back_to_checks(darkserver: str, client_env: Path,
                                                 mirror: FileServer, koji: FileServer,
                                                 crashy_rows: dict[str, Any], program: Program,
                                                 tmp_path: Path) -> None:
    """The first candidate (a mirror without the package) answers 404 to the GET: every
    candidate is then checked, and the package comes from the one that answered."""
    write_conf(client_env, tmp_path / "cache", {"mirror": [f"{mirror.url}/{{filename}}"]})
    cfg = configmod.load(darkserver)
    service = Service(cfg, darkserver, Cache(tmp_path / "c", 1 << 20))
    try:
        got = service.fetch(program.main_id, "debuginfo")
    finally:
        service.close()
    assert got.status == 200 and got.path is not None, got.reason
    assert got.path.read_bytes() == program.debug.read_bytes()
    name = "/crashy-debuginfo-1.0-1.fc40.x86_64.rpm"
    assert mirror.requests == [("GET", name), ("HEAD", name)]
    koji_path = "/" + crashy_rows["debug_url"].split("/", 3)[3]
    assert koji.requests == [("HEAD", koji_path), ("GET", koji_path)]


def test_answers_are_remembered(darkserver: str, client_env: Path,
                                crashy_rows: dict[str, Any], program: Program,
                                dead_url: str, tmp_path: Path) -> None:
    """A build-id's matches and source packages are asked once: with the Darkserver gone,
    the other kinds of the same build-id are still answered (packages from Koji)."""
    cfg = configmod.load(darkserver)
    service = Service(cfg, darkserver, Cache(tmp_path / "c", 1 << 20))
    try:
        assert service.fetch(program.main_id, "debuginfo").status == 200
        assert service.fetch(program.main_id, "source", SOURCE_PATH).status == 200
        service.server = dead_url
        exe = service.fetch(program.main_id, "executable")
        assert exe.status == 200, exe.reason
        assert exe.content() == program.stripped.read_bytes()
        rel = service.fetch(program.main_id, "source", "/crashy.c")
        assert rel.status == 200, rel.reason
        assert rel.content().decode() == MAIN_C
        # An id never asked for needs the Darkserver: 503, and that is not remembered.
        down = service.fetch(program.liba_id, "debuginfo")
        assert down.status == 503, down.reason
        service.server = darkserver
        assert service.fetch(program.liba_id, "debuginfo").status == 404
    finally:
        service.close()


def test_prefetch_a_core(endpoint: tuple[str, Path], crashy_rows: dict[str, Any],
                         program: Program, cores: dict[str, Path], koji: FileServer) -> None:
    """`darkclient prefetch CORE --serve URL` sends the core's build-ids; serve looks them up
    in one batch and fetches every known module's debug file before it is asked for it."""
    url, cache = endpoint
    out = io.StringIO()
    assert cli_main(["prefetch", str(cores["stripped"]), "--serve", url], out) == 0
    ids = core_build_ids(str(cores["stripped"]))
    assert program.main_id in ids and len(ids) > 1  # the program, libc, ld.so, ...
    assert out.getvalue() == f"{url}: prefetching the debug files of {len(ids)} modules\n"
    debug = cache / program.main_id / "debuginfo.json"
    deadline = time.monotonic() + 120
    while not debug.exists():  # fetched behind the 202
        assert time.monotonic() < deadline, "prefetch did not fetch the debug file"
        time.sleep(0.05)
    name = "/" + crashy_rows["debug_url"].split("/", 3)[3]
    assert koji.requests == [("GET", name)]
    r = requests.get(f"{url}/buildid/{program.main_id}/debuginfo", timeout=30)
    assert r.status_code == 200 and r.content == program.debug.read_bytes()
    assert koji.requests == [("GET", name)]  # answered from the cache
    other = next(i for i in ids if i != program.main_id)
    miss = requests.get(f"{url}/buildid/{other}/debuginfo", timeout=30)
    assert miss.status_code == 404 and f"build-id {other} unknown" in miss.text


def test_prefetch_requests_checked(endpoint: tuple[str, Path], dead_url: str,
                                   cores: dict[str, Path]) -> None:
    url, _ = endpoint
    for path, body, status, reason in (
            ("/prefetch", b"nonsense", 400, "want"),
            ("/prefetch", b'{"buildids": ["xyz"]}', 400, "want"),
            ("/prefetch", b'{"ids": []}', 400, "want"),
            ("/other", b"{}", 404, "POST /prefetch is the one POST endpoint")):
        r = requests.post(url + path, data=body, timeout=10)
        assert r.status_code == status and reason in r.json()["error"], (path, body, r.text)
    assert requests.post(url + "/prefetch", json={"buildids": ["ab" * 20, "AB" * 20]},
                         timeout=10).json() == {"prefetching": 1}
    err = io.StringIO()
    assert cli_main(["prefetch", str(cores["stripped"]), "--serve", dead_url],
                    io.StringIO(), err) == 2
    assert err.getvalue().startswith(f"darkclient: cannot reach darkclient serve at {dead_url}")


def test_log_says_where_the_time_went(darkserver: str, client_env: Path,
                                      crashy_rows: dict[str, Any], program: Program,
                                      tmp_path: Path) -> None:
    """A 200's log line names the steps it waited for; a cache hit waited for none."""
    log = io.StringIO()
    service = Service(configmod.load(darkserver), darkserver, Cache(tmp_path / "c", 1 << 20))
    httpd = make_server(service, "127.0.0.1", 0, log)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for _ in range(2):
            r = requests.get(f"http://127.0.0.1:{httpd.server_address[1]}/buildid/"
                             f"{program.main_id}/debuginfo", timeout=60)
            assert r.status_code == 200
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()
    first, second = log.getvalue().splitlines()
    head = rf"GET /buildid/{program.main_id}/debuginfo 200 \d+\.\d{{3}}s " \
           r"crashy-1\.0-1\.fc40\.x86_64\.debug"
    # The cache write is not among them: it happens after the answer (Cache.put_behind).
    assert re.fullmatch(head + r" \(lookup \d+ ms, download \d+ ms, read \d+ ms\)",
                        first), first
    assert re.fullmatch(head, second), second


def test_source_package_of_the_modules_arch(endpoint: tuple[str, Path],
                                            crashy_rows: dict[str, Any], program: Program,
                                            koji: FileServer) -> None:
    """One source package: taken without a lookup. Several (a build for two arches): the
    lookup says the module's arch. An unknown id: the lookup says so."""
    url, _ = endpoint
    debugsource = Package.objects.get(name="crashy-debugsource")
    nvra = "crashy-debugsource-1.0-1.fc40.aarch64"
    Package.objects.create(  # listed first (by NVRA); its URL answers 404
        build=debugsource.build, kind="rpm", nvra=nvra, name="crashy-debugsource",
        version="1.0", release="1.fc40", arch="aarch64", filename=f"{nvra}.rpm", size=1,
        sha256="00" * 32, url=f"{koji.url}/nowhere/{nvra}.rpm")
    r = requests.get(f"{url}/buildid/{program.main_id}/source{quote(SOURCE_PATH)}", timeout=60)
    assert r.status_code == 200 and r.text == MAIN_C, r.text
    assert r.headers["X-DEBUGINFOD-ARCHIVE"] == crashy_rows["source_url"]
    unknown = requests.get(f"{url}/buildid/{program.liba_id}/source/x.c", timeout=60)
    assert unknown.status_code == 404 and f"build-id {program.liba_id} unknown" in unknown.text


def test_prefetch_starts_light() -> None:
    """`darkclient prefetch` runs beside gdb: its start imports neither requests nor the
    lookup commands (~0.4 s of imports), only the core reader."""
    import sys

    code = ("import sys; from darkclient.cli import parser; import darkclient.prefetch; "
            "parser().parse_args(['prefetch', 'x', '--serve', 'http://h']); "
            "print(sorted(m for m in ('requests', 'darkclient.commands', 'darkclient.layout') "
            "if m in sys.modules))")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert got.stdout == "[]\n", got.stdout


def test_cache_written_behind_the_answer(darkserver: str, client_env: Path,
                                         crashy_rows: dict[str, Any], program: Program,
                                         tmp_path: Path) -> None:
    """An answer goes out from memory and reaches the disk cache after: complete once
    flushed (file and headers), found in memory before that, and read from disk by the next
    serve over the same directory."""
    cfg = configmod.load(darkserver)
    root = tmp_path / "c"
    cache = Cache(root, 1 << 20)
    service = Service(cfg, darkserver, cache)
    try:
        got = service.fetch(program.main_id, "debuginfo")
        assert got.status == 200 and got.data == program.debug.read_bytes(), got.reason
        hit = cache.get(program.main_id, "debuginfo")  # written or not yet: the same answer
        assert hit is not None and hit.headers == got.headers
        cache.flush()
        assert (root / program.main_id / "debuginfo").read_bytes() == got.data
        assert not [p for p in (root / program.main_id).iterdir() if p.name.startswith(".")]
    finally:
        service.close()
    again = Cache(root, 1 << 20).get(program.main_id, "debuginfo")
    assert again is not None and again.data is None and again.headers == got.headers
    assert again.path.read_bytes() == program.debug.read_bytes()


def test_truncated_package_is_502_and_not_cached(endpoint: tuple[str, Path],
                                                 crashy_rows: dict[str, Any], koji: FileServer,
                                                 program: Program) -> None:
    """A package cut short (the mirror's answer ends early): 502 with the reason, and nothing
    of it in the cache, not even a temporary file."""
    url, cache = endpoint
    for f in koji.root.rglob("crashy-debuginfo-*.rpm"):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    r = requests.get(f"{url}/buildid/{program.main_id}/debuginfo", timeout=60)
    assert r.status_code == 502 and "expected" in r.text, r.text
    exe = requests.get(f"{url}/buildid/{program.main_id}/executable", timeout=60)
    assert exe.status_code == 200  # the other package is whole: cached as usual
    # The cache is written behind the answer: wait until the executable's files are in (a
    # listing taken between its two writes, or during one, shows a part of them).
    deadline = time.monotonic() + 30
    entry = cache / program.main_id
    while (listing := sorted(p.name for p in entry.iterdir()) if entry.exists() else []) != \
            ["executable", "executable.json"]:
        assert time.monotonic() < deadline, listing
        time.sleep(0.05)


def test_one_source_package_needs_no_lookup(darkserver: str, client_env: Path,
                                            crashy_rows: dict[str, Any], program: Program,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A build with one source package: the source is answered from /sources alone (one
    round trip to the Darkserver before the package); the lookup is left for choosing among
    several or saying why there is none."""
    import darkclient.serve

    asked: list[str] = []
    real = darkclient.serve.lookup_one

    def counted(session: Any, server: str, build_id: str, timeout: float) -> Any:
        asked.append(build_id)
        return real(session, server, build_id, timeout)

    monkeypatch.setattr(darkclient.serve, "lookup_one", counted)
    service = Service(configmod.load(darkserver), darkserver, Cache(tmp_path / "c", 1 << 20))
    try:
        got = service.fetch(program.main_id, "source", SOURCE_PATH)
        assert got.status == 200 and got.content().decode() == MAIN_C, got.reason
        assert asked == []
        unknown = service.fetch(program.liba_id, "source", "/x.c")
        assert unknown.status == 404 and "unknown" in unknown.reason
        assert asked == [program.liba_id]
    finally:
        service.close()
