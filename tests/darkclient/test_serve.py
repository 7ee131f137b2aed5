"""darkclient serve: a debuginfod endpoint, checked with the real debuginfod-find and gdb."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from darkclient import config as configmod
from darkclient.serve import Cache, Service, make_server, parse_size
from tests.darkclient.conftest import MAIN_C, FileServer, PayloadKind, Program, add_payload_kind
from tests.darkclient.test_debugdir import KINDS


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
    # Unknown: a 404 debuginfod-find reports as "No such file or directory".
    got = find(url, tmp_path, "debuginfo", program.liba_id)
    assert got.returncode != 0 and "No such file" in got.stderr


def test_http_details(endpoint: tuple[str, Path], crashy_rows: dict[str, Any],
                      program: Program) -> None:
    url, _ = endpoint
    r = requests.get(f"{url}/buildid/{program.main_id.upper()}/debuginfo", timeout=30)
    assert r.status_code == 200 and r.content == program.debug.read_bytes()
    assert r.headers["X-DEBUGINFOD-SIZE"] == str(len(r.content))
    assert r.headers["X-DEBUGINFOD-FILE"] == \
        "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug"
    assert r.headers["X-DEBUGINFOD-ARCHIVE"] == crashy_rows["debug_url"]
    h = requests.head(f"{url}/buildid/{program.main_id}/executable", timeout=30)
    assert h.status_code == 200 and h.headers["Content-Length"] == \
        str(program.stripped.stat().st_size)
    for bad in ("/buildid/xyz/debuginfo", "/buildid/abc/debuginfo", "/",
                f"/buildid/{program.main_id}/source/usr/src/x.c"):
        assert requests.get(url + bad, timeout=10).status_code == 404
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
         "-ex", "bt", str(program.stripped), str(cores["stripped"])],
        capture_output=True, text=True, env=env, timeout=180)
    out = proc.stdout + proc.stderr
    raise_line = next(i for i, t in enumerate(MAIN_C.splitlines(), 1) if "raise(SIGABRT)" in t)
    assert f"in crash_here (depth=3) at crashy.c:{raise_line}" in out, out


def test_cache_is_bounded_lru(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c", limit=250)
    for i, name in enumerate(["aa", "bb", "cc"]):
        path = cache.path(name * 10, "debuginfo")
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
        (path.parent / "debuginfo.json").write_text("{}")
    assert cache.get("aa" * 10, "debuginfo") is not None  # a hit makes aa the newest
    cache.put_meta("cc" * 10, "debuginfo", {})
    left = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert left == ["aa" * 10, "cc" * 10]  # bb was least recently used
    assert parse_size("2G") == 2 << 30 and parse_size("500M") == 500 << 20


def test_serve_command(darkserver: str, client_env: Path, crashy_rows: dict[str, Any],
                       program: Program, tmp_path: Path) -> None:
    """The console script itself: `darkclient serve --listen` in its own process."""
    import socket
    import sys
    import time

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
