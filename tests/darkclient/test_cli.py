"""The CLI end to end against the real Darkserver (live thread, rows made through the ORM) and
plain HTTP servers on 127.0.0.1 for mirror and Koji."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from darkclient.cli import main
from tests.darkclient.conftest import FileServer, Program, Rpms, copy_to, write_conf

UNKNOWN = "00112233445566778899aabbccddeeff00112233"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_buildid_found_json(darkserver: str, client_env: Path, crashy_rows: dict[str, Any],
                            program: Program) -> None:
    code, out, err = run("buildid", program.main_id.upper(), "--server", darkserver, "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["summary"] == {"items": 1, "found": 1, "unknown": 0, "without_buildid": 0,
                              "errors": 0}
    [item] = doc["items"]
    assert (item["buildid"], item["found"], item["problem"]) == (program.main_id, True, None)
    got = {(m["nvra"], m["path"], m["debug"], m["url"], m["url_kind"]) for m in item["matches"]}
    assert got == {
        ("crashy-1.0-1.fc40.x86_64", "/usr/bin/crashy", False, crashy_rows["main_url"], "koji"),
        ("crashy-debuginfo-1.0-1.fc40.x86_64",
         "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug", True,
         crashy_rows["debug_url"], "koji"),
    }


def test_text_output_and_unknown_exit_1(darkserver: str, client_env: Path,
                                        crashy_rows: dict[str, Any], program: Program,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARKSERVER_URL", darkserver)  # the server from the environment
    code, out, err = run("buildid", program.main_id, UNKNOWN)
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == program.main_id
    assert "    crashy-1.0-1.fc40.x86_64  fc40  /usr/bin/crashy" in lines
    assert f"        {crashy_rows['main_url']}  (koji)" in lines
    assert lines[-3:] == [UNKNOWN, "    unknown to the server",
                          "2 modules/ids: 1 found, 1 unknown, 0 without build-id"]


def test_file_and_core(darkserver: str, client_env: Path, crashy_rows: dict[str, Any],
                       program: Program, cores: dict[str, Path]) -> None:
    code, out, _ = run("file", str(program.main), str(program.liba), "--server", darkserver,
                       "--json")
    assert code == 1  # libdca.so is unknown
    items = json.loads(out)["items"]
    assert [(i["source"], i["buildid"], i["found"]) for i in items] == [
        (str(program.main), program.main_id, True), (str(program.liba), program.liba_id, False)]
    code, out, _ = run("core", str(cores["gdb"]), "--server", darkserver, "--json")
    assert code == 1
    items = {Path(i["source"]).name: i for i in json.loads(out)["items"]}
    assert items["crashy"]["found"] and items["crashy"]["buildid"] == program.main_id
    assert not items["libdca.so"]["found"]


def test_dry_run_sends_only_build_ids(cores: dict[str, Path], client_env: Path,
                                      program: Program, dead_url: str) -> None:
    code, out, err = run("core", str(cores["gdb"]), "--server", dead_url, "--dry-run")
    assert (code, err) == (0, "")
    head, body = out.split("\n\n", 1)
    assert head == f"POST {dead_url}/api/v1/buildids\nContent-Type: application/json"
    doc = json.loads(body)
    assert list(doc) == ["buildids"]
    assert program.main_id in doc["buildids"] and program.liba_id in doc["buildids"]
    assert all(len(b) in (32, 40) and int(b, 16) >= 0 for b in doc["buildids"])
    assert "crashy" not in body and "/" not in body


def test_server_down(client_env: Path, dead_url: str) -> None:
    code, out, err = run("buildid", UNKNOWN, "--server", dead_url)
    assert code == 2 and out == ""
    assert err == (f"darkclient: cannot reach Darkserver at {dead_url}/api/v1/buildids: "
                   "connection refused\n")


def test_server_slow(client_env: Path, hanging: str) -> None:
    t0 = time.monotonic()
    code, _, err = run("buildid", UNKNOWN, "--server", hanging, "--timeout", "1")
    assert code == 2
    assert err == f"darkclient: Darkserver at {hanging}/api/v1/buildids did not answer within 1 s\n"
    assert time.monotonic() - t0 < 10


def test_not_json_and_4xx(client_env: Path, koji: FileServer, darkserver: str) -> None:
    # http.server answers POST with an HTML 501 page; a Darkserver route that does not exist
    # answers a JSON 404 whose message is shown.
    code, _, err = run("buildid", UNKNOWN, "--server", koji.url)
    assert code == 2 and err.startswith(f"darkclient: Darkserver at {koji.url}/api/v1/buildids ")
    assert "HTTP 501" in err and err.count("\n") == 1
    code, _, err = run("buildid", UNKNOWN, "--server", darkserver + "/nothing-here")
    assert code == 2 and "rejected the request (HTTP 404): " in err and err.count("\n") == 1


def test_bad_input(client_env: Path, tmp_path: Path, program: Program, dead_url: str) -> None:
    code, _, err = run("buildid", "xyz", "--server", dead_url, "--dry-run")
    assert code == 2
    assert err.splitlines()[0] == ("darkclient: not a build-id: 'xyz' (build-id must be 8 to "
                                   "128 hex digits, even length)")
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello world")
    code, _, err = run("core", str(junk), "--server", dead_url)
    assert (code, err) == (2, f"darkclient: {junk}: not an ELF file (no \\x7fELF magic)\n")
    code, _, err = run("core", str(program.main), "--server", dead_url)
    assert (code, err) == (2, f"darkclient: {program.main}: not a core dump "
                              "(ELF file is a shared object)\n")
    code, _, err = run("core", str(tmp_path / "missing"), "--server", dead_url)
    assert (code, err) == (2, f"darkclient: {tmp_path / 'missing'}: No such file or directory\n")
    code, _, err = run("file", str(junk), "--server", dead_url)
    assert code == 2 and "not an ELF file" in err


def test_no_server_configured(client_env: Path, program: Program) -> None:
    code, _, err = run("buildid", program.main_id)
    assert code == 2 and err.startswith("darkclient: no Darkserver configured: use --server")


def test_server_from_config_file(client_env: Path, darkserver: str, crashy_rows: dict[str, Any],
                                 program: Program, tmp_path: Path) -> None:
    write_conf(client_env, tmp_path / "cache", {}, extra=f"server = {darkserver}\n")
    code, out, _ = run("buildid", program.main_id, "--no-check")
    assert code == 0 and "crashy-1.0-1.fc40.x86_64" in out


def test_mirror_first_then_koji(darkserver: str, client_env: Path, crashy_rows: dict[str, Any],
                                program: Program, mirror: FileServer, rpms: Rpms,
                                tmp_path: Path) -> None:
    """The mirror answers for the main rpm (so it wins over Koji); it 404s the debuginfo rpm,
    which then resolves to Koji."""
    template = f"{mirror.url}/updates/{{releasever}}/Everything/{{basearch}}/Packages/" \
               "{first}/{filename}"
    write_conf(client_env, tmp_path / "cache", {"mirror": [template]})
    mirrored = copy_to(mirror, rpms.main, "updates/40/Everything/x86_64/Packages/c")
    code, out, _ = run("buildid", program.main_id, "--server", darkserver, "--json")
    assert code == 0
    urls = {m["nvra"]: (m["url"], m["url_kind"]) for m in json.loads(out)["items"][0]["matches"]}
    assert urls == {
        "crashy-1.0-1.fc40.x86_64": (mirrored, "mirror"),
        "crashy-debuginfo-1.0-1.fc40.x86_64": (crashy_rows["debug_url"], "koji"),
    }
    assert ("HEAD", "/updates/40/Everything/x86_64/Packages/c/"
            "crashy-debuginfo-1.0-1.fc40.x86_64.rpm") in mirror.requests


@pytest.mark.parametrize("id_bytes", [2, 65])
def test_id_the_server_would_reject_is_never_sent(darkserver: str, client_env: Path,
                                                 crashy_rows: dict[str, Any], program: Program,
                                                 tmp_path: Path, id_bytes: int) -> None:
    """ld writes any --build-id=0xHEX it is given; the server answers a batch holding an id
    outside 4..64 bytes with 400. The client says so locally and still looks the others up."""
    odd = tmp_path / "odd"
    (tmp_path / "odd.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", f"-Wl,--build-id=0x{'ab' * id_bytes}", "-o", str(odd),
                    str(tmp_path / "odd.c")], check=True)
    code, out, err = run("file", str(odd), str(program.main), "--server", darkserver,
                         "--json", "--no-check")
    # Before: the whole batch was refused with HTTP 400 (exit 2). A file without a usable id
    # does not decide the exit status.
    assert (code, err) == (0, ""), err
    doc = json.loads(out)
    items = {i["source"]: i for i in doc["items"]}
    assert items[str(program.main)]["found"] is True
    assert items[str(odd)]["buildid"] is None
    assert f"build-id note of {id_bytes} bytes" in items[str(odd)]["problem"]
    [missing] = doc["not_found"]
    assert missing["source"] == str(odd) and missing["counts_for_status"] is False
    code, out, err = run("file", str(odd), "--server", darkserver, "--dry-run")
    assert code == 0 and '"buildids": []' in out and "abab" not in out


def test_exit_status_counts_modules_that_matter(darkserver: str, client_env: Path,
                                                crashy_rows: dict[str, Any], program: Program,
                                                cores: dict[str, Path]) -> None:
    """0 once every module with a build-id except the vDSO is known; 1 while one is not."""
    from darkcore.core import VDSO_NAME, read_core_path
    from tests.darkclient.conftest import add_package, make_build

    core = read_core_path(cores["gdb"])
    assert any(m.name == VDSO_NAME for m in core.modules)  # the case this is about
    code, out, _ = run("core", str(cores["gdb"]), "--server", darkserver, "--json",
                       "--no-check")
    doc = json.loads(out)
    counted = {m["source"] for m in doc["not_found"] if m["counts_for_status"]}
    assert code == 1 and str(program.liba) in counted and VDSO_NAME not in counted
    others = [(m.build_id_hex, m.name, False) for m in core.modules
              if m.build_id and m.name != VDSO_NAME and m.build_id_hex != program.main_id]
    add_package("system", make_build("system"), None, "", others)
    code, out, _ = run("core", str(cores["gdb"]), "--server", darkserver, "--json",
                       "--no-check")
    doc = json.loads(out)
    assert code == 0, doc["not_found"]
    assert [(m["source"], m["why"], m["counts_for_status"]) for m in doc["not_found"]] == [
        (VDSO_NAME, "the kernel's vDSO: in no package", False)]
