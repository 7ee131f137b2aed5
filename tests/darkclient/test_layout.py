"""--debug-dir's extras (darkclient.layout): dwz files by their own build-id, checked with gdb."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

from darkclient.cli import main
from tests.darkclient.conftest import DwzDemo, FileServer, add_dwz_demo


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def ptype(binary: Path, *options: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["gdb", "-nx", "-batch", *options, "-ex", "ptype struct shared_shape",
                           str(binary)], capture_output=True, text=True, timeout=120, env=env)
    return proc.stdout + proc.stderr


def test_dwz_file_is_laid_out_by_its_build_id(darkserver: str, client_env: Path,
                                              koji: FileServer, dwz_demo: DwzDemo,
                                              tmp_path: Path) -> None:
    add_dwz_demo(dwz_demo, koji)
    dbg = tmp_path / "debug"
    code, out, err = run("buildid", dwz_demo.ids["a"], "--server", darkserver,
                         "--debug-dir", str(dbg))
    assert (code, err) == (0, ""), out
    a, dwz = (dbg / ".build-id" / i[:2] / f"{i[2:]}.debug"
              for i in (dwz_demo.ids["a"], dwz_demo.ids["dwz"]))
    assert a.is_file() and dwz.is_file()
    assert f"dwz file: {dwz}" in out.splitlines()
    options = ("-iex", "set debuginfod enabled off", "-iex", f"set debug-file-directory {dbg}")
    assert "char label[32];" in ptype(dwz_demo.stripped, *options)
    dwz.unlink()  # the control: the same debug file without its dwz file
    assert "char label[32];" not in ptype(dwz_demo.stripped, *options)


def test_dwz_file_through_serve(darkserver: str, client_env: Path, koji: FileServer,
                                dwz_demo: DwzDemo, tmp_path: Path) -> None:
    """gdb asks the debuginfod endpoint for the dwz file by its build-id, and gets it."""
    import threading

    from darkclient import config as configmod
    from darkclient.serve import Cache, Service, make_server

    add_dwz_demo(dwz_demo, koji)
    service = Service(configmod.load(darkserver), darkserver,
                      Cache(tmp_path / "cache", 50 << 20))
    httpd = make_server(service, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        env = os.environ | {"DEBUGINFOD_URLS": f"http://127.0.0.1:{httpd.server_address[1]}",
                            "DEBUGINFOD_CACHE_PATH": str(tmp_path / "gdb-cache")}
        out = ptype(dwz_demo.stripped, "-iex", "set debuginfod enabled on", "-iex",
                    f"set debug-file-directory {tmp_path / 'none'}", env=env)
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()
    assert "char label[32];" in out, out
