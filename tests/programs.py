"""Programs compiled with gcc and their cores (made by gdb and by the kernel), shared by the
client tests and the core reader's tests (a plugin loaded by tests/conftest.py)."""

from __future__ import annotations

import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from darkcore.elf import read_elf_path

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
    # The DWARF names the sources where Fedora's debugedit puts them (the -debugsource rpm's
    # directory), so that gdb's `list` needs the sources from the package, not from here.
    run(["gcc", "-g", "-O0", f"-fdebug-prefix-map={d}={SOURCE_DIR}", "-Wl,--build-id", "-o",
         "crashy", "crashy.c", "-L.", "-ldca",
         "-ldcb", f"-Wl,-rpath,{d}"], cwd=d)
    run(["objcopy", "--only-keep-debug", "crashy", "crashy.debug"], cwd=d)
    run(["strip", "--strip-all", "-o", "crashy.stripped", "crashy"], cwd=d)

    def bid(p: Path) -> str:
        info = read_elf_path(p)
        assert info is not None and info.build_id is not None
        return info.build_id.hex()

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


# --- rpms ---------------------------------------------------------------------------------------

SOURCE_DIR = "/usr/src/debug/crashy-1.0-1.fc40.x86_64"
SOURCE_PATH = f"{SOURCE_DIR}/crashy.c"

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
%package debugsource
Summary: debug sources for crashy
%description debugsource
debug sources
%package debuginfo
Summary: debug info for crashy
%description debuginfo
debug info
%install
mkdir -p %{{buildroot}}/usr/bin %{{buildroot}}/usr/lib/debug/usr/bin
install -m 0755 {stripped} %{{buildroot}}/usr/bin/crashy
install -m 0644 {debug} %{{buildroot}}/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug
mkdir -p %{{buildroot}}{source_dir}
install -m 0644 {source} %{{buildroot}}{source_dir}/crashy.c
%files
/usr/bin/crashy
%files debuginfo
/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug
%files debugsource
{source_dir}/crashy.c
"""


@dataclass(frozen=True)
class Rpms:
    main: Path
    debuginfo: Path
    debugsource: Path  # Fedora-style: the sources under /usr/src/debug/crashy-1.0-1.fc40.x86_64


@pytest.fixture(scope="session")
def rpms(program: Program, tmp_path_factory: pytest.TempPathFactory) -> Rpms:
    top = tmp_path_factory.mktemp("rpmbuild")
    spec = top / "crashy.spec"
    spec.write_text(spec_text(program))
    run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_binary_payload w9.xzdio",
         str(spec)])
    rpmdir = top / "RPMS" / "x86_64"
    return Rpms(rpmdir / "crashy-1.0-1.fc40.x86_64.rpm",
                rpmdir / "crashy-debuginfo-1.0-1.fc40.x86_64.rpm",
                rpmdir / "crashy-debugsource-1.0-1.fc40.x86_64.rpm")


def spec_text(program: Program) -> str:
    return SPEC.format(stripped=program.stripped, debug=program.debug,
                       source=program.dir / "crashy.c", source_dir=SOURCE_DIR)
