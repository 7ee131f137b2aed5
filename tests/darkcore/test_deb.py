"""darkcore.deb against dpkg-deb's packages and its own answers (dpkg-deb -f / -c)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from darkcore.deb import DebMember, DebReader, control_from_fields, parse_control
from darkcore.errors import (
    DecompressionError,
    FormatError,
    TruncatedError,
    UnsupportedPackage,
)
from darkimport import samples
from tests.darkcore.archive_tools import (
    ar_archive,
    assemble_deb,
    control_tar_gz,
    tar_bytes,
    tool,
)

pytest_plugins = ["tests.darkcore.conftest_archives"]  # fixtures: real packages

KINDS = list(samples.DEB_COMPRESSIONS)


def read_deb(data: bytes) -> tuple[DebReader, list[tuple[DebMember, bytes]]]:
    deb = DebReader(io.BytesIO(data))
    out = []
    for member in deb.members():
        out.append((member, member.data.read() if member.data is not None else b""))
    return deb, out


def dpkg_listing(path: Path) -> dict[str, str]:
    """name -> type letter from ``dpkg-deb -c`` (h = hard link)."""
    listing = {}
    for line in tool("dpkg-deb", "-c", path).decode().splitlines():
        perms, _owner, _size, _date, _time, rest = line.split(None, 5)
        name = rest.split(" link to ")[0].split(" -> ")[0]
        name = name.rstrip("/") or "."  # tarfile drops a directory's trailing slash
        listing[name] = "h" if " link to " in rest else perms[0]
    return listing


@pytest.mark.parametrize("kind", KINDS)
def test_every_data_compression(debs_by_compression: dict[str, Path],
                                elf_by_label: dict[str, samples.SampleElf], kind: str) -> None:
    path = debs_by_compression[kind]
    deb, members = read_deb(path.read_bytes())
    types = {m.name: {"file": "-", "dir": "d", "symlink": "l", "hardlink": "h"}[m.type]
             for m, _ in members}
    assert types == dpkg_listing(path)
    data = {m.name: body for m, body in members}
    assert data["./usr/lib64/libdemo.so.1.0.0"] == elf_by_label["shared-sha1"].source.read_bytes()
    links = [(m.name, m.linkname) for m, _ in members if m.type == "hardlink"]
    assert len(links) == 1 and {links[0][0], "./" + links[0][1].removeprefix("./")} == {
        "./usr/bin/hello", "./usr/bin/hello-sha1"}
    assert deb.data_compression == kind


def test_control_fields(debs_by_compression: dict[str, Path]) -> None:
    path = debs_by_compression["xz"]
    deb, _ = read_deb(path.read_bytes())
    control = deb.control
    assert control is not None
    fields = tool("dpkg-deb", "-f", path, "Package", "Version", "Architecture").decode()
    assert fields.splitlines() == [f"Package: {control.package}", f"Version: {control.version}",
                                   f"Architecture: {control.architecture}"]
    assert (control.version, control.source, control.source_version) == (
        "1:1.0-2+deb12u1", "demo-src", "1.0-2")


def test_parse_control_continuations_and_build_ids() -> None:
    fields = parse_control("Package: foo-dbgsym\nVersion: 2\nArchitecture: arm64\n"
                           "Description: first\n second line\n"
                           "Build-Ids: AB12 cd34\n\nPackage: ignored\n")
    assert fields["Description"] == "first\nsecond line"
    control = control_from_fields(fields)
    assert (control.package, control.source, control.build_ids) == (
        "foo-dbgsym", "foo-dbgsym", ("ab12", "cd34"))
    with pytest.raises(FormatError, match="no Version field"):
        control_from_fields({"Package": "x", "Architecture": "all"})
    with pytest.raises(FormatError, match="not a field"):
        parse_control("Package foo\n")


def dpkg_members(path: Path) -> list[tuple[bytes, bytes]]:
    """The real deb's ar members, for reassembly in other ar styles."""
    scratch = path.parent / f"ar-{path.stem}"
    scratch.mkdir(exist_ok=True)
    names = tool("ar", "t", path).decode().split()
    tool("ar", "x", path.resolve(), "--output", scratch)
    return [(n.encode(), (scratch / n).read_bytes()) for n in names]


@pytest.mark.parametrize("style", ["gnu", "bsd", "gnu-short"])
def test_ar_name_styles(debs_by_compression: dict[str, Path], style: str) -> None:
    path = debs_by_compression["gzip"]
    reassembled = ar_archive(dpkg_members(path), style=style)
    _, original = read_deb(path.read_bytes())
    _, members = read_deb(reassembled)
    assert [(m.name, body) for m, body in members] == [(m.name, body) for m, body in original]


def test_data_tar_lzma(tmp_path: Path) -> None:
    """dpkg-deb no longer writes .lzma; old archives have it: assembled with xz --format=lzma."""
    data = tool("xz", "--format=lzma", "-c", stdin=tar_bytes([("./usr/bin/x", b"\x7fELFxyz")]))
    deb = assemble_deb(tmp_path / "old.deb", data, "data.tar.lzma")
    _, members = read_deb(deb.read_bytes())
    assert [(m.name, body) for m, body in members] == [("./usr/bin/x", b"\x7fELFxyz")]


def test_unknown_data_compression(tmp_path: Path) -> None:
    deb = assemble_deb(tmp_path / "x.deb", b"whatever", "data.tar.lz4")
    with pytest.raises(UnsupportedPackage, match="unknown compression '.lz4'"):
        read_deb(deb.read_bytes())


def test_missing_members(tmp_path: Path) -> None:
    control = control_tar_gz({"Package": "a", "Version": "1", "Architecture": "all"})
    no_data = ar_archive([(b"debian-binary", b"2.0\n"), (b"control.tar.gz", control)])
    with pytest.raises(FormatError, match="no data.tar member"):
        read_deb(no_data)
    no_control = ar_archive([(b"debian-binary", b"2.0\n"), (b"data.tar", tar_bytes([]))])
    with pytest.raises(FormatError, match="no control.tar member"):
        read_deb(no_control)
    future = ar_archive([(b"debian-binary", b"3.0\n")])
    with pytest.raises(UnsupportedPackage, match="deb format version"):
        read_deb(future)


def test_bad_ar_magic_and_header() -> None:
    with pytest.raises(FormatError, match="bad ar magic"):
        DebReader(io.BytesIO(b"!<thin>\n"))
    broken = bytearray(ar_archive([(b"debian-binary", b"2.0\n")]))
    broken[8 + 58 : 8 + 60] = b"xx"
    with pytest.raises(FormatError, match="header is corrupt"):
        read_deb(bytes(broken))


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.3, 0.6, 0.95, 0.9999])
@pytest.mark.parametrize("kind", ["xz", "gzip", "none", "zstd", "bzip2"])
def test_truncated_debs(debs_by_compression: dict[str, Path], kind: str, fraction: float) -> None:
    data = debs_by_compression[kind].read_bytes()
    # At least 2 bytes go: the last one may be the ar padding byte, which is not required.
    with pytest.raises(TruncatedError, match="truncated"):
        read_deb(data[: min(int(len(data) * fraction), len(data) - 2)])


def test_corrupt_data_tar_xz(debs_by_compression: dict[str, Path], tmp_path: Path) -> None:
    bad = samples.corrupt_copy(debs_by_compression["xz"], tmp_path / "bad.deb")
    with pytest.raises(DecompressionError, match="corrupt xz data"):
        read_deb(bad.read_bytes())


def test_corrupt_tar_header(tmp_path: Path) -> None:
    tar = bytearray(tar_bytes([("./usr/bin/x", b"x" * 600), ("./usr/bin/y", b"y")]))
    tar[1536 + 148 : 1536 + 156] = b"garbage!"  # second header's checksum field
    deb = assemble_deb(tmp_path / "bad.deb", bytes(tar))
    with pytest.raises(FormatError, match="data.tar"):
        read_deb(deb.read_bytes())


def test_truncated_tar_inside_a_valid_compressed_stream(tmp_path: Path) -> None:
    """The compression is intact, the tar inside is not: still a truncated package."""
    tar = tar_bytes([("./usr/bin/x", b"x" * 3000), ("./usr/bin/y", b"y" * 3000)])
    # x: header at 0, data 512..3512; y: header at 3584, data from 4096
    for cut in (1000, 3584 + 100, 4096 + 1000):
        deb = assemble_deb(tmp_path / "cut.deb", tool("xz", "-c", stdin=tar[:cut]),
                           "data.tar.xz")
        with pytest.raises(TruncatedError, match="truncated"):
            read_deb(deb.read_bytes())


def test_hostile_names_are_passed_through_unchanged(tmp_path: Path) -> None:
    """deb.py reports names as stored; paths.py (through scan) decides what is stored."""
    deb = assemble_deb(tmp_path / "evil.deb", tar_bytes([("../../etc/x", b"\x7fELF")]))
    _, members = read_deb(deb.read_bytes())
    assert [m.name for m, _ in members] == ["../../etc/x"]
