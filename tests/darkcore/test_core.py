"""Modules and build-ids read from real cores agree with ``eu-unstrip -n --core``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from darkcore.core import VDSO_NAME, NotCoreError, read_core_path
from darkcore.elf import NotElfError
from darkcore.errors import TruncatedError
from tests.programs import Program


def eu_unstrip(core: Path) -> dict[int, str]:
    """{module start: build-id} as elfutils reads them from the core."""
    out = subprocess.run(["eu-unstrip", "-n", "--core", str(core)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    modules = {}
    for line in out.splitlines():
        addr, bid = line.split()[:2]
        modules[int(addr.split("+")[0], 16)] = bid.split("@")[0]
    return modules


@pytest.mark.parametrize("kind", ["gdb", "stripped", "kernel"])
def test_agrees_with_eu_unstrip(cores: dict[str, Path], program: Program, kind: str) -> None:
    if kind not in cores:
        pytest.skip("kernel core_pattern hands cores to a collector; no kernel core here")
    core = read_core_path(cores[kind])
    ours = {m.start: m.build_id_hex for m in core.modules}
    assert ours == eu_unstrip(cores[kind])
    assert core.warnings == []
    names = {Path(m.name).name: m.build_id_hex for m in core.modules}
    main = "crashy.stripped" if kind == "stripped" else "crashy"
    assert names[main] == program.main_id
    assert names["libdca.so"] == program.liba_id
    assert names["libdcb.so"] == program.libb_id
    assert VDSO_NAME in names
    assert any(n.startswith("libc.so") for n in names)
    assert all(m.end > m.start for m in core.modules)


def test_truncated_kernel_core(cores: dict[str, Path], tmp_path: Path) -> None:
    """The kernel writes notes first and memory after: a core cut short (disk full,
    RLIMIT_CORE) keeps its notes; modules past the cut are reported, without a build-id."""
    if "kernel" not in cores:
        pytest.skip("no kernel core here")
    data = cores["kernel"].read_bytes()
    full = read_core_path(cores["kernel"])
    cut = tmp_path / "cut.core"
    cut.write_bytes(data[: len(data) // 2])
    core = read_core_path(cut)
    assert core.truncated
    assert any("truncated" in w for w in core.warnings)
    assert {m.start for m in core.modules} <= {m.start for m in full.modules}
    lost = [m for m in core.modules if m.build_id is None]
    kept = {m.start: m.build_id for m in core.modules if m.build_id}
    assert lost and all("truncated" in m.problem for m in lost)
    assert kept and all(full_m.build_id == kept[full_m.start]
                        for full_m in full.modules if full_m.start in kept)


def test_truncated_gdb_core_agrees_with_eu_unstrip(cores: dict[str, Path],
                                                   tmp_path: Path) -> None:
    """gdb writes the notes last, so a cut core loses them first (systemd-coredump cuts large
    cores; disks fill up). The modules whose ELF headers were dumped before the cut are still
    found, with their build-ids, from the headers in the core's memory: the same modules and
    ids as ``eu-unstrip -n --core`` lists, at every cut."""
    data = cores["gdb"].read_bytes()
    full = {m.start: m.build_id_hex for m in read_core_path(cores["gdb"]).modules}
    found_some = 0
    for fraction in (0.2, 0.4, 0.6, 0.8, 0.95):
        cut = tmp_path / f"cut{fraction}.core"
        cut.write_bytes(data[: int(len(data) * fraction)])
        core = read_core_path(cut)
        assert core.truncated and any("past the end" in w for w in core.warnings)
        ours = {m.start: m.build_id_hex for m in core.modules if m.build_id}
        assert ours == eu_unstrip(cut), fraction
        assert all(full[start] == bid for start, bid in ours.items())
        found_some += bool(ours)
    assert found_some, "no cut kept a module: the test would prove nothing"


def test_core_cut_inside_its_headers_is_a_one_line_error(cores: dict[str, Path],
                                                          tmp_path: Path) -> None:
    cut = tmp_path / "cut.core"
    cut.write_bytes(cores["gdb"].read_bytes()[:100])
    with pytest.raises(TruncatedError, match="truncated"):
        read_core_path(cut)


def test_not_a_core(program: Program, tmp_path: Path) -> None:
    with pytest.raises(NotCoreError, match="not a core dump"):
        read_core_path(program.main)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(NotElfError):
        read_core_path(text)


def test_core_from_gcore_of_running_process(program: Program, tmp_path: Path) -> None:
    """gcore on a live process (the third way cores are made)."""
    if shutil.which("gcore") is None:
        pytest.skip("gcore not installed")
    proc = subprocess.Popen(["sleep", "30"])
    try:
        out = tmp_path / "sleep"
        subprocess.run(["gcore", "-o", str(out), str(proc.pid)], capture_output=True,
                       timeout=60)
    finally:
        proc.kill()
        proc.wait()
    made = list(tmp_path.glob("sleep.*"))
    if not made:
        pytest.skip("gcore could not attach (ptrace restricted)")
    core = read_core_path(made[0])
    assert {m.start: m.build_id_hex for m in core.modules} == eu_unstrip(made[0])
