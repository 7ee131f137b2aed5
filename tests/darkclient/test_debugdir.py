"""--download and --debug-dir end to end: a stripped binary's core, the debug file fetched from
a real rpm on a local HTTP server, and real gdb showing function names and source lines."""

from __future__ import annotations

import io
import shlex
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from darkclient.cli import main
from darkclient.debugdir import check_build_id, extract_files
from darkcore.elf import read_elf_bytes
from darkserver.lookup.models import Package
from tests.darkclient.conftest import (
    MAIN_C,
    FileServer,
    PayloadKind,
    Program,
    Rpms,
    add_package,
    add_payload_kind,
    make_build,
    sha256,
)
from tests.programs import SOURCE_PATH


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def gdb_bt(binary: Path, core: Path, debug_dir: Path, command: str = "bt") -> str:
    proc = subprocess.run(
        ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
         "-iex", f"set debug-file-directory {debug_dir}", "-ex", command, str(binary),
         str(core)],
        capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def debug_file(root: Path, build_id: str) -> Path:
    return root / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"


def test_gdb_finds_symbols_in_debug_dir(darkserver: str, client_env: Path,
                                        crashy_rows: dict[str, Any], program: Program,
                                        cores: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    before = gdb_bt(program.stripped, cores["stripped"], empty)
    assert "crash_here" not in before  # the control: stripped, no symbols

    dbg = tmp_path / "debug"
    code, out, err = run("core", str(cores["stripped"]), "--server", darkserver,
                         "--debug-dir", str(dbg))
    assert code == 1, err  # the shared libraries are unknown to this server
    target = debug_file(dbg, program.main_id)
    assert target.read_bytes() == program.debug.read_bytes()
    assert f"    debug file: {target}" in out.splitlines()
    # Nothing else was written: the debug file and the build's sources (from
    # crashy-debugsource), no member under its own name, no leftovers.
    source = dbg / SOURCE_PATH.lstrip("/")
    assert sorted(p.relative_to(dbg) for p in dbg.rglob("*") if p.is_file()) == sorted([
        target.relative_to(dbg), source.relative_to(dbg)])
    assert source.read_text() == MAIN_C
    assert f"sources: 1 files from crashy-debugsource-1.0-1.fc40.x86_64 under " \
        f"{dbg / 'usr/src/debug'}" in out

    after = gdb_bt(program.stripped, cores["stripped"], dbg)
    lines = MAIN_C.splitlines()
    raise_line = next(i for i, t in enumerate(lines, 1) if "raise(SIGABRT)" in t)
    call_line = next(i for i, t in enumerate(lines, 1) if "return crash_here(v)" in t)
    assert f"in crash_here (depth=3) at crashy.c:{raise_line}" in after, after
    assert "in main (argc=1, " in after and f"at crashy.c:{call_line}" in after
    assert f"{raise_line}\t" not in after  # no `list` asked yet

    # The hint the client prints, as given: symbols and `list` with the machine's own
    # /usr/lib/debug kept in the path.
    [hint] = [line for line in out.splitlines() if line.startswith("debug with: gdb ")]
    words = shlex.split(hint.removeprefix("debug with: "))
    assert words[1:3] == ["-iex", f"set debug-file-directory /usr/lib/debug:{dbg.absolute()}"]
    options = words[1:-2]  # without PROGRAM CORE
    listed = subprocess.run(
        ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", *options,
         "-ex", "frame function crash_here", "-ex", "list",
         str(program.stripped), str(cores["stripped"])],
        capture_output=True, text=True, timeout=120)
    text = listed.stdout + listed.stderr
    assert f"{raise_line}\t{lines[raise_line - 1]}" in text, text
    control = gdb_bt(program.stripped, cores["stripped"], dbg, "list")
    assert "No such file or directory" in control  # without the source setting


def test_download_verifies(darkserver: str, client_env: Path, crashy_rows: dict[str, Any],
                           program: Program, rpms: Rpms, tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    code, out, err = run("buildid", program.main_id, "--server", darkserver,
                         "--download", str(dl))
    assert (code, err) == (0, "")
    assert sorted(p.name for p in dl.iterdir()) == [rpms.main.name]
    assert sha256(dl / rpms.main.name) == sha256(rpms.main)

    code, out, err = run("buildid", program.main_id, "--server", darkserver,
                         "--download", str(dl), "--debuginfo")
    assert code == 0
    assert sorted(p.name for p in dl.iterdir()) == sorted([rpms.main.name, rpms.debuginfo.name])

    Package.objects.filter(name="crashy").update(sha256="00" * 32)
    bad = tmp_path / "bad"
    code, out, err = run("buildid", program.main_id, "--server", darkserver,
                         "--download", str(bad))
    assert code == 2
    assert "SHA-256 mismatch" in err and err.count("\n") == 1
    assert list(bad.iterdir()) == []  # nothing half-downloaded left behind


def test_size_mismatch_and_wrong_member(darkserver: str, client_env: Path, program: Program,
                                        rpms: Rpms, koji: FileServer, tmp_path: Path) -> None:
    build = make_build()
    url = f"{koji.url}/{rpms.debuginfo.name}"
    (koji.root / rpms.debuginfo.name).write_bytes(rpms.debuginfo.read_bytes())
    debug_path = "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug"
    # The server claims libdca's build-id lives in crashy's debug file: the extracted file's
    # own build-id disagrees, so nothing is installed.
    add_package("crashy-debuginfo", build, rpms.debuginfo, url,
                [(program.liba_id, debug_path, True)])
    dbg = tmp_path / "debug"
    code, out, err = run("buildid", program.liba_id, "--server", darkserver,
                         "--debug-dir", str(dbg))
    assert code == 2
    assert f"build-id {program.main_id} differs from {program.liba_id}" in err
    assert not any(p.is_file() for p in dbg.rglob("*"))

    Package.objects.update(size=123)
    code, out, err = run("buildid", program.liba_id, "--server", darkserver,
                         "--debug-dir", str(dbg))
    assert code == 2 and "larger than the 123 bytes expected" in err


KINDS = ["rpm-gzip", "rpm-bzip2", "rpm-xz", "rpm-lzma", "rpm-zstd", "rpm-none",
         "rpm-stripped-cpio", "deb-gzip", "deb-xz", "deb-zstd", "deb-none", "deb-bzip2",
         "deb-odd-names"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_payload_kind_to_debug_dir(darkserver: str, client_env: Path, koji: FileServer,
                                         payload_kinds: dict[str, PayloadKind], kind: str,
                                         tmp_path: Path) -> None:
    """--debug-dir from memory and from --download reads every payload the importer reads
    (before darkcore: gzip and tagless uncompressed rpms, stripped cpio and "//" names failed)."""
    k = payload_kinds[kind]
    add_payload_kind(k, koji)
    for mode, extra in (("memory", []), ("download", ["--download", str(tmp_path / "dl")])):
        dbg = tmp_path / f"debug-{mode}"
        code, out, err = run("buildid", k.build_id.upper(), "--server", darkserver,
                             "--debug-dir", str(dbg), *extra)
        assert (code, err) == (0, ""), (mode, out)
        assert debug_file(dbg, k.build_id).read_bytes() == k.content, mode
    assert (tmp_path / "dl" / k.package.name).read_bytes() == k.package.read_bytes()


def test_rpm_none_really_has_no_compressor_tag(payload_kinds: dict[str, PayloadKind]) -> None:
    """The control for rpm-none: rpm itself reports no PAYLOADCOMPRESSOR."""
    out = subprocess.run(["rpm", "-qp", "--qf", "[%{PAYLOADCOMPRESSOR}]",
                          str(payload_kinds["rpm-none"].package)],
                         capture_output=True, text=True, check=True).stdout
    assert out == ""
    cpio = subprocess.run(["rpm2cpio", str(payload_kinds["rpm-none"].package)],
                          capture_output=True, check=True).stdout
    assert cpio.startswith(b"070701")  # rpm2cpio reads it: the package is valid


def test_extract_files_reads_a_package_once(program: Program, rpms: Rpms) -> None:
    """serve's path: the files wanted (ELF files, sources) in memory, within a budget, with the
    members needed kept whatever the budget; the build-id rule is the one --debug-dir uses."""
    debug = "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug"
    with open(rpms.debuginfo, "rb") as f:
        [held] = extract_files(f, lambda p, d: d.startswith(b"\x7fELF"), set(), 1 << 30)
    assert held.paths == [debug] and held.data == program.debug.read_bytes()
    assert held.mtime > 0
    assert check_build_id(debug, partial(read_elf_bytes, held.data), program.main_id) == ""
    assert check_build_id(debug, partial(read_elf_bytes, held.data), program.liba_id) == \
        f"{debug}: build-id {program.main_id} differs from {program.liba_id}"
    assert check_build_id("x", partial(read_elf_bytes, b"text"), program.main_id) == \
        f"x: build-id not ELF differs from {program.main_id}"
    with open(rpms.debugsource, "rb") as f:
        [src] = extract_files(f, lambda p, d: True, set(), 1 << 30)
    assert src.paths == [SOURCE_PATH] and src.data.decode() == MAIN_C
    with open(rpms.debugsource, "rb") as f:  # over the budget: not kept ...
        assert extract_files(f, lambda p, d: True, set(), 10) == []
    with open(rpms.debugsource, "rb") as f:  # ... unless needed
        [src] = extract_files(f, lambda p, d: False, {SOURCE_PATH}, 0)
    assert src.data.decode() == MAIN_C
