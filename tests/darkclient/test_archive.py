"""The package stream reader on real rpms (every payload compressor) and a real deb."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from darkclient.archive import iter_members
from darkclient.debugdir import Target, build_id_path, extract
from darkclient.errors import FormatError, TruncatedError
from tests.darkclient.conftest import SPEC, Program, Rpms

DEBUG_PATH = "/usr/lib/debug/usr/bin/crashy-1.0-1.fc40.x86_64.debug"


def members(path: Path) -> dict[str, bytes]:
    with open(path, "rb") as f:
        return {m.path: m.data.read() for m in iter_members(f) if m.is_file}


@pytest.mark.parametrize("payload", ["w9.gzdio", "w9.bzdio", "w19.zstdio", "w2.xzdio"])
def test_rpm_payloads(program: Program, tmp_path: Path, payload: str) -> None:
    spec = tmp_path / "crashy.spec"
    spec.write_text(SPEC.format(stripped=program.stripped, debug=program.debug))
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
        out = tmp_path / f"out-{comp}"
        with open(deb, "rb") as f:
            [res] = extract(f, [Target(bid, next(iter(got)), build_id_path(out, bid))])
        assert res.ok and build_id_path(out, bid).read_bytes() == program.debug.read_bytes()


def test_corrupt_and_truncated(rpms: Rpms) -> None:
    data = rpms.debuginfo.read_bytes()
    with pytest.raises(FormatError, match="not an rpm or deb"):
        list(iter_members(io.BytesIO(b"hello world, not a package")))
    with pytest.raises(TruncatedError):
        list(iter_members(io.BytesIO(data[:200])))
    with pytest.raises(FormatError):
        for m in iter_members(io.BytesIO(data[: len(data) - 50])):
            m.data.read()
