"""darkimport.run.scan: whole packages in, PackageScan out, checked against the real tools.

Expected rows come from tests/oracle.py (bsdtar / dpkg-deb unpack + binutils readelf), never
from our own readers.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tempfile
import tracemalloc
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from darkcore.elf import ET_DYN, ET_REL
from darkcore.errors import (
    DecompressionError,
    FormatError,
    PackageError,
    TruncatedError,
    UnsupportedPackage,
)
from darkimport import samples
from darkimport.run import scan
from darkimport.run.scan import (
    ScanOptions,
    deb_distro,
    rpm_distro,
    scan_path,
    scan_stream,
    split_deb_version,
    srpm_name,
)
from tests.darkcore.archive_tools import (
    assemble_deb,
    rpm_query,
    tar_bytes,
    tool,
)
from tests.oracle import expected_rows

pytest_plugins = ["tests.darkcore.conftest_archives"]  # fixtures: real packages

TEMPLATES = {
    "rpm": "https://kojipkgs.example/packages/{source}/{version}/{release}/{arch}/{filename}",
    "deb": "https://deb.example/pool/main/{source_prefix}/{source}/{filename}",
}


def rows(result: scan.PackageScan) -> set[tuple[str, str, str]]:
    return {(e.build_id.hex(), e.path, result.meta.nvra) for e in result.elves}


def test_every_sample_package_matches_readelf(sample_set) -> None:
    """Every rpm payload compression and every deb data.tar compression, all ELF kinds."""
    for package in sample_set.packages:
        result = scan_path(package)
        expected = {(r.build_id, r.path, r.nvra) for r in expected_rows(package)}
        assert rows(result) == expected, package.name
        assert result.warnings == [], package.name
        assert len(result.elves) == len(expected)


@pytest.mark.parametrize("kind", list(samples.RPM_PAYLOADS))
def test_rpm_scan(rpms_by_compression: dict[str, Path],
                  elf_by_label: dict[str, samples.SampleElf], kind: str) -> None:
    path = rpms_by_compression[kind]
    result = scan_path(path, ScanOptions(url_templates=TEMPLATES))
    meta = result.meta
    data = path.read_bytes()
    assert (meta.kind, meta.name, meta.epoch, meta.version, meta.release, meta.arch) == (
        "rpm", "demo", 3 if kind == "zstd" else None, "1.0", "2.fc40", "x86_64")
    assert (meta.source_name, meta.filename, meta.nvra, meta.distro) == (
        "demo", path.name, "demo-1.0-2.fc40.x86_64", "fc40")
    assert meta.size == len(data)
    assert meta.sha256 == hashlib.sha256(data).hexdigest()
    assert meta.sigmd5 == rpm_query(path, "%{SIGMD5}")
    assert meta.url == f"https://kojipkgs.example/packages/demo/1.0/2.fc40/x86_64/{path.name}"
    by_path = {e.path: e for e in result.elves}
    sha1 = elf_by_label["exec-sha1"].build_id
    assert by_path["/usr/bin/hello"].build_id.hex() == sha1  # the hard link: both paths
    assert by_path["/usr/bin/hello-sha1"].build_id.hex() == sha1
    assert by_path["/usr/lib64/libdemo.so.1.0.0"].elf_type == ET_DYN
    assert by_path["/usr/lib/modules/6.1.0-demo/extra/demo.ko"].elf_type == ET_REL
    assert by_path["/usr/bin/hello-md5"].machine == 62  # EM_X86_64
    assert by_path["/usr/bin/hello-sha1"].package_note is not None  # FDO note kept
    assert not any(e.debug for e in result.elves)
    # five ELF files (the hard-linked pair counts once), one of them without an id
    assert (result.elf_files, result.without_build_id, len(result.elves)) == (5, 1, 5)


@pytest.mark.parametrize("kind", list(samples.DEB_COMPRESSIONS))
def test_deb_scan(debs_by_compression: dict[str, Path], kind: str) -> None:
    path = debs_by_compression[kind]
    result = scan_path(path, ScanOptions(url_templates=TEMPLATES))
    meta = result.meta
    assert (meta.kind, meta.name, meta.epoch, meta.version, meta.release, meta.arch) == (
        "deb", "demo", 1, "1.0", "2+deb12u1", "amd64")
    assert (meta.source_name, meta.source_version, meta.source_release) == (
        "demo-src", "1.0", "2")
    assert (meta.nvra, meta.distro, meta.sigmd5) == ("demo_1.0-2+deb12u1_amd64", "deb12", "")
    assert meta.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta.url == f"https://deb.example/pool/main/d/demo-src/{path.name}"
    assert rows(result) == {(r.build_id, r.path, r.nvra) for r in expected_rows(path)}
    paths = {e.path for e in result.elves}
    assert {"/usr/bin/hello", "/usr/bin/hello-sha1"} <= paths  # tar hard link: both
    assert (result.elf_files, result.without_build_id, len(result.elves)) == (5, 1, 5)
    configured = scan_path(path, ScanOptions(deb_distro="bookworm"))
    assert configured.meta.distro == "bookworm"


def test_debug_files_are_flagged(sample_set) -> None:
    for package in sample_set.packages:
        for e in scan_path(package).elves:
            assert e.debug == e.path.startswith("/usr/lib/debug/")
    debuginfo = next(p for p in sample_set.packages if "debuginfo" in p.name)
    assert all(e.debug for e in scan_path(debuginfo).elves)


def test_stripped_cpio_rpm(large_rpm: Path, elf_by_label: dict[str, samples.SampleElf]) -> None:
    """rpmbuild's stripped payload (07070X, a 4 GiB file in it): real ids, no 4 GiB in memory."""
    result = scan_path(large_rpm)
    assert {(e.path, e.build_id.hex()) for e in result.elves} == {
        ("/usr/bin/hello-sha1", elf_by_label["exec-sha1"].build_id),
        ("/usr/lib64/libdemo.so.1.0.0", elf_by_label["shared-sha1"].build_id),
    }
    assert result.elf_files == 2


def test_scan_from_a_pipe(rpms_by_compression: dict[str, Path]) -> None:
    """scan_stream needs no seekable file: the importer can feed it a download."""
    path = rpms_by_compression["xz"]
    with subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        result = scan_stream(cast(BinaryIO, proc.stdout), path.name)
    assert rows(result) == rows(scan_path(path))
    assert result.meta.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


class Trickle(io.RawIOBase):
    """A stream that delivers a few bytes per read, like a slow socket or pipe."""

    def __init__(self, data: bytes, step: int = 3) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        return self._data.readinto(memoryview(buffer)[: self._step])


@pytest.mark.parametrize("kind", ["none", "gzip"])
def test_scan_from_a_trickling_stream(rpms_by_compression: dict[str, Path],
                                      debs_by_compression: dict[str, Path], kind: str) -> None:
    """Magic bytes are sniffed by reading, not peeking: short reads do not confuse them."""
    for path in (rpms_by_compression[kind], debs_by_compression[kind]):
        result = scan_stream(cast(BinaryIO, Trickle(path.read_bytes())), path.name)
        assert rows(result) == rows(scan_path(path)) != set()


def test_big_elf_members_go_through_an_anonymous_spool(
        monkeypatch: pytest.MonkeyPatch, debs_by_compression: dict[str, Path],
        rpms_by_compression: dict[str, Path]) -> None:
    spools: list[object] = []
    real = tempfile.TemporaryFile

    def spy(*args: object, **kwargs: object) -> object:
        assert "prefix" not in kwargs and "suffix" not in kwargs and "dir" not in kwargs
        spool = real(*args, **kwargs)  # type: ignore[call-overload]
        spools.append(spool)
        return spool

    monkeypatch.setattr(scan.tempfile, "TemporaryFile", spy)
    for package in (debs_by_compression["gzip"], rpms_by_compression["gzip"]):
        in_memory = scan_path(package)
        monkeypatch.setattr(scan, "ELF_IN_MEMORY", 1024)
        spooled = scan_path(package)
        monkeypatch.setattr(scan, "ELF_IN_MEMORY", 32 << 20)
        assert rows(spooled) == rows(in_memory)
        assert spooled.elf_files == in_memory.elf_files
    assert len(spools) >= 8


# --- hostile and broken members -----------------------------------------------------------


def test_hostile_path_is_warned_about_and_not_stored(tmp_path: Path,
                                                     elf_by_label: dict[str, samples.SampleElf]
                                                     ) -> None:
    elf = elf_by_label["exec-md5"]
    data = tar_bytes([("../../etc/x", elf.source.read_bytes()),
                      ("./usr/bin/ok", elf.source.read_bytes()),
                      ("./usr/../../../root/y", elf.source.read_bytes())],
                     links=[("./usr/bin/../../../z", "./usr/bin/ok")])
    deb = assemble_deb(tmp_path / "evil_1.0-1_amd64.deb", data, "data.tar")
    result = scan_path(deb)
    assert [(e.path, e.build_id.hex()) for e in result.elves] == [("/usr/bin/ok", elf.build_id)]
    assert result.warnings == [
        "rejected hostile path '../../etc/x' ('..' component)",
        "rejected hostile path './usr/../../../root/y' ('..' component)",
        "rejected hostile path './usr/bin/../../../z' ('..' component)",
    ]
    assert result.elf_files == 1


def test_broken_elf_member_costs_a_warning_not_the_package(
        tmp_path: Path, elf_by_label: dict[str, samples.SampleElf]) -> None:
    good = elf_by_label["shared-sha1"]
    broken = good.source.read_bytes()[:200]  # header fine, section/program tables cut off
    data = tar_bytes([("./usr/lib64/broken.so", broken), ("./usr/lib64/good.so",
                                                            good.source.read_bytes())])
    result = scan_path(assemble_deb(tmp_path / "mixed_1.0-1_amd64.deb", data, "data.tar"))
    assert [e.path for e in result.elves] == ["/usr/lib64/good.so"]
    assert (result.elf_files, result.without_build_id) == (2, 1)
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("/usr/lib64/broken.so: unreadable ELF file")


def test_hard_link_to_a_file_without_build_id_adds_nothing(
        tmp_path: Path, elf_by_label: dict[str, samples.SampleElf]) -> None:
    none = elf_by_label["exec-none"].source.read_bytes()
    data = tar_bytes([("./usr/bin/a", none), ("./usr/bin/text", b"hello")],
                     links=[("./usr/bin/b", "./usr/bin/a"), ("./usr/bin/c", "./usr/bin/text")])
    result = scan_path(assemble_deb(tmp_path / "n_1.0_amd64.deb", data))
    assert (result.elves, result.elf_files, result.without_build_id) == ([], 1, 1)


def test_listed_build_ids_missing_from_the_data_are_reported(tmp_path: Path) -> None:
    fields = {"Package": "x-dbgsym", "Version": "1", "Architecture": "amd64",
              "Build-Ids": "00112233445566778899aabbccddeeff00112233"}
    result = scan_path(assemble_deb(tmp_path / "x.deb", tar_bytes([]), fields=fields))
    assert result.warnings == ["control lists build-id 00112233445566778899aabbccddeeff00112233"
                               " but no file has it"]


def test_unusable_url_template_is_a_warning(rpms_by_compression: dict[str, Path]) -> None:
    result = scan_path(rpms_by_compression["gzip"],
                       ScanOptions(url_templates={"rpm": "https://x/{nosuchfield}"}))
    assert result.meta.url == ""
    assert result.warnings and "URL template" in result.warnings[0]


# --- broken packages: a failure, never a partial scan ---------------------------------------


@pytest.mark.parametrize("fraction", [0.01, 0.04, 0.2, 0.5, 0.8, 0.999])
def test_truncated_packages_fail(sample_set, tmp_path: Path, fraction: float) -> None:
    """Cut in the lead, the headers and the payload of every sample (each compression)."""
    for package in sample_set.packages:
        cut = samples.truncate_copy(package, tmp_path / package.name, fraction)
        if cut.stat().st_size > package.stat().st_size - 2:
            continue  # the last byte of a deb may be optional ar padding
        with pytest.raises(PackageError) as info:
            scan_path(cut)
        assert isinstance(info.value, TruncatedError | DecompressionError | FormatError), \
            package.name
        assert str(info.value), package.name


def test_truncation_points_and_messages(rpms_by_compression: dict[str, Path],
                                        tmp_path: Path) -> None:
    data = rpms_by_compression["xz"].read_bytes()
    start = samples.payload_offset(rpms_by_compression["xz"])
    cases = {
        60: "rpm lead truncated",
        200: "rpm signature header truncated",
        start - 100: "rpm header truncated",
        start + (len(data) - start) // 2: "xz stream truncated",
    }
    for cut, message in cases.items():
        out = tmp_path / "cut.rpm"
        out.write_bytes(data[:cut])
        with pytest.raises(TruncatedError, match=message):
            scan_path(out)


def test_corrupt_payloads_fail(sample_set, tmp_path: Path) -> None:
    """Every compression has a checksum; an uncompressed rpm has SIGMD5. An uncompressed
    data.tar has nothing (dpkg checks md5sums only after installing), so it is left out."""
    for package in sample_set.packages:
        if package.suffix == ".deb" and "data.tar" in tool("ar", "t", package).decode().split():
            continue
        bad = samples.corrupt_copy(package, tmp_path / package.name)
        with pytest.raises((DecompressionError, FormatError)):
            scan_path(bad)


def test_corrupt_data_tar_xz(debs_by_compression: dict[str, Path], tmp_path: Path) -> None:
    bad = samples.corrupt_copy(debs_by_compression["xz"], tmp_path / "bad.deb")
    with pytest.raises(DecompressionError, match="corrupt xz data"):
        scan_path(bad)


def test_source_rpm_is_skipped(archive_dir: Path) -> None:
    with pytest.raises(UnsupportedPackage, match="source rpm"):
        scan_path(samples.build_source_rpm(archive_dir))


def test_files_that_are_not_packages(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedPackage, match="not an rpm or deb"):
        scan_path(tmp_path / "notes.txt")
    (tmp_path / "empty.rpm").write_bytes(b"")
    with pytest.raises(TruncatedError, match="empty file"):
        scan_path(tmp_path / "empty.rpm")
    (tmp_path / "fake.deb").write_bytes(b"PK\x03\x04 this is a zip")
    with pytest.raises(FormatError, match="no rpm or deb magic"):
        scan_path(tmp_path / "fake.deb")


def test_corrupt_tar_member_header_fails_the_package(tmp_path: Path) -> None:
    data = bytearray(tar_bytes([("./a", b"a" * 600), ("./b", b"\x7fELF")]))
    data[1536 + 148 : 1536 + 156] = b"garbage!"
    with pytest.raises(FormatError, match="corrupt member header"):
        scan_path(assemble_deb(tmp_path / "bad.deb", bytes(data)))


# --- memory ---------------------------------------------------------------------------------


def test_big_non_elf_members_are_not_kept(tmp_path: Path,
                                          elf_by_label: dict[str, samples.SampleElf]) -> None:
    """A 256 MB file passes through in chunks: Python's peak stays a few MB (the whole data.tar
    is never in memory, nor is any non-ELF member)."""
    big = tmp_path / "big.img"
    with open(big, "wb") as f:
        f.truncate(256 << 20)
    files = [(big, "/usr/share/demo/big.img"), (elf_by_label["exec-md5"].source,
                                                "/usr/bin/hello-md5")]
    deb = samples.build_deb(tmp_path, "big", "1.0", "amd64", files, "zstd")
    big.unlink()
    tracemalloc.start()
    try:
        result = scan_path(deb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [e.path for e in result.elves] == ["/usr/bin/hello-md5"]
    assert peak < 24 << 20, f"peak {peak / 1e6:.1f} MB"


# --- metadata helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(("release", "distro"), [
    ("1.fc40", "fc40"), ("3.el9_2", "el9"), ("1.el8_10", "el8"), ("2.eln136", "eln136"),
    ("1.mga9", "mga9"), ("1.fc40.1", "fc40"), ("0.rc1.fc41", "fc41"),
    ("1.module+el8.4.0+10307+74578396", "el8"), ("1.amzn2023.0.1", "amzn2023"),
    ("150500.3.1", ""), ("1", ""),
])
def test_rpm_distro(release: str, distro: str) -> None:
    assert rpm_distro(release) == distro


def test_srpm_name() -> None:
    assert srpm_name("apr-1.4.5-1.fc16.src.rpm") == "apr"
    assert srpm_name("python-foo-bar-2.0-3.el9.src.rpm") == "python-foo-bar"
    assert srpm_name("odd.nosrc.rpm") == "odd"


def test_deb_versions_and_distro() -> None:
    assert split_deb_version("1:2.3-4") == (1, "2.3", "4")
    assert split_deb_version("2.3") == (None, "2.3", "")
    assert split_deb_version("2.3-rc1-4+b1") == (None, "2.3-rc1", "4+b1")
    with pytest.raises(FormatError, match="bad epoch"):
        split_deb_version("x:1.0")
    assert deb_distro("2.36-9+deb12u4", None) == "deb12"
    assert deb_distro("1.0-1~deb11u1", None) == "deb11"
    assert deb_distro("1.0-1", None) == "debian"
    assert deb_distro("1.0-1ubuntu2", None) == "ubuntu"
    assert deb_distro("2.36-9+deb12u4", "trixie") == "trixie"


def test_member_names_are_normalised(tmp_path: Path,
                                     elf_by_label: dict[str, samples.SampleElf]) -> None:
    """Names without "./", with "//" or "." (Python's tarfile, old tools) end up the same."""
    elf = elf_by_label["shared-sha1"]
    data = tar_bytes([("usr//lib/./libx.so", elf.source.read_bytes())])
    result = scan_path(assemble_deb(tmp_path / "x.deb", data))
    assert [(e.path, e.build_id.hex()) for e in result.elves] == [("/usr/lib/libx.so",
                                                                   elf.build_id)]
