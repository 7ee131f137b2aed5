"""darkcore.package: any package stream on real rpms (every payload compressor) and real debs."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from darkcore.errors import PackageError, TruncatedError, UnsupportedPackage
from darkcore.package import iter_members
from darkcore.paths import normalize_member_path
from tests.programs import Program, Rpms, spec_text

DEBUG_PATH = "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug"


def members(path: Path) -> dict[str, bytes]:
    with open(path, "rb") as f:
        return {normalize_member_path(m.name): m.data.read()
                for m in iter_members(f) if m.is_regular and m.data is not None}


@pytest.mark.parametrize("payload", ["w9.gzdio", "w9.bzdio", "w19.zstdio", "w2.xzdio"])
def test_rpm_payloads(program: Program, tmp_path: Path, payload: str) -> None:
    spec = tmp_path / "crashy.spec"
    spec.write_text(spec_text(program))
    subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {tmp_path}", "--define",
                    f"_binary_payload {payload}", str(spec)], check=True, capture_output=True)
    rpm = tmp_path / "RPMS/x86_64/crashy-debuginfo-1.0-1.fc40.x86_64.rpm"
    assert members(rpm) == {DEBUG_PATH: program.debug.read_bytes()}
    main = tmp_path / "RPMS/x86_64/crashy-1.0-1.fc40.x86_64.rpm"
    assert members(main) == {"/usr/bin/crashy": program.stripped.read_bytes()}


def test_deb_dbgsym(program: Program, tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    bid = program.main_id
    dest = root / "usr/lib/debug/.build-id" / bid[:2] / f"{bid[2:]}.debug"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(program.debug.read_bytes())
    os.utime(dest, (1_600_000_000, 1_600_000_000))
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(
        "Package: crashy-dbgsym\nVersion: 1.0-1\nArchitecture: amd64\n"
        "Maintainer: t <t@example.org>\nDescription: debug symbols\n"
        f"Build-Ids: {bid}\n")
    for comp in ("xz", "gzip", "zstd"):
        deb = tmp_path / f"crashy-dbgsym_{comp}.deb"
        subprocess.run(["dpkg-deb", f"-Z{comp}", "--root-owner-group", "-b", str(root),
                        str(deb)], check=True, capture_output=True)
        got = members(deb)
        assert got == {f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug":
                       program.debug.read_bytes()}, comp
        with open(deb, "rb") as f:
            assert [m.mtime for m in iter_members(f) if m.is_regular] == [1_600_000_000]


def test_corrupt_and_truncated(rpms: Rpms) -> None:
    data = rpms.debuginfo.read_bytes()
    with pytest.raises(UnsupportedPackage, match="not an rpm or deb"):
        list(iter_members(io.BytesIO(b"hello world, not a package")))
    with pytest.raises(TruncatedError):
        list(iter_members(io.BytesIO(b"")))
    with pytest.raises(TruncatedError):
        list(iter_members(io.BytesIO(data[:200])))
    with pytest.raises(PackageError):
        for m in iter_members(io.BytesIO(data[: len(data) - 50])):
            if m.data is not None:
                m.data.read()


def test_mtimes_from_the_rpm_header_and_the_tar(rpms: Rpms) -> None:
    """Member mtimes (debuginfod's Last-Modified) agree with rpm's own file list."""
    out = subprocess.run(["rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEMTIMES}\n]",
                          str(rpms.debuginfo)], capture_output=True, text=True, check=True)
    want = dict(line.rsplit(" ", 1) for line in out.stdout.splitlines())
    with open(rpms.debuginfo, "rb") as f:
        got = {normalize_member_path(m.name): m.mtime for m in iter_members(f, mtimes=True)
               if m.is_regular}
    assert got and all(str(t) == want[p] and t > 0 for p, t in got.items())
