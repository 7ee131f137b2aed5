"""Integrity before interpretation: every digest a package carries is checked before a row
exists, with ``rpm -K`` (and dpkg's own md5sums via ``md5sum -c``) as the oracle for what is
damaged. A damaged package fails (IntegrityError/FormatError, never "unsupported"); a package
that carries no digest is imported and marked unverified.
"""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import pytest

from darkcore.errors import IntegrityError, PackageError, UnsupportedPackage
from darkcore.rpm import RpmReader
from darkimport import samples
from darkimport.run.importrun import run_import
from darkimport.run.records import PackageScan
from darkimport.run.scan import ScanOptions, scan_path
from tests.darkcore.archive_tools import (
    SIGNATURE_DIGEST_TAGS,
    ar_archive,
    rename_rpm_tags,
    rpm_check,
    tool,
    with_v6_signature,
)
from tests.oracle import expected_rows

pytest_plugins = ["tests.darkcore.conftest_archives"]  # fixtures: real packages

PAYLOAD_DIGEST_TAGS = (5092, 5097, 1035)  # PAYLOADDIGEST, PAYLOADDIGESTALT, FILEDIGESTS


def rows(result: PackageScan) -> set[tuple[str, str]]:
    return {(e.build_id.hex(), e.path) for e in result.elves}


def header_span(data: bytes) -> tuple[int, int]:
    """(start, end) of the main header in an rpm."""
    count, length = struct.unpack_from(">II", data, 96 + 8)
    main = 96 + 16 + 16 * count + length
    main += -main % 8
    count, length = struct.unpack_from(">II", data, main + 8)
    return main, main + 16 + 16 * count + length


def flipped(data: bytes, offset: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- valid packages -------------------------------------------------------------------------


def test_valid_packages_are_verified_with_every_digest_they_carry(sample_set) -> None:
    for package in sample_set.packages:
        result = scan_path(package)
        assert result.verified, package.name
        assert rows(result) == {(r.build_id, r.path) for r in expected_rows(package)}
        if package.suffix == ".rpm":
            assert rpm_check(package)[0]
            rpm = RpmReader(io.BytesIO(package.read_bytes()))
            for _ in rpm.members():
                pass
            # rpm -Kv lists the same digests as present and OK
            assert {"SHA256HEADER", "SHA1HEADER", "PAYLOADDIGEST", "PAYLOADDIGESTALT",
                    "SIGMD5"} <= set(rpm.digests), package.name


# --- rpm: header ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["index", "name", "compressor", "payloadformat", "sourcerpm"])
def test_a_flipped_bit_in_the_header_fails_before_any_field_is_used(
        rpms_by_compression: dict[str, Path], tmp_path: Path, where: str) -> None:
    """Every one of these used to decide something first: the payload compressor ("unknown
    compression"), the payload format ("unsupported"), SOURCERPM ("source rpm")."""
    path = rpms_by_compression["zstd"]
    data = path.read_bytes()
    start, end = header_span(data)
    needle = {"index": None, "name": b"demo\0", "compressor": b"zstd\0",
              "payloadformat": b"cpio\0", "sourcerpm": b".src.rpm\0"}[where]
    offset = start + 16 + 5 if needle is None else data.index(needle, start, end) + 1
    bad = write(tmp_path / path.name, flipped(data, offset, 2))
    assert not rpm_check(bad)[0]
    with pytest.raises(IntegrityError, match="rpm header corrupt: its SHA256 .* SHA256HEADER"):
        scan_path(bad)


def test_the_lead_decides_nothing(rpms_by_compression: dict[str, Path], tmp_path: Path) -> None:
    """The lead's package type is covered by no digest (rpm ignores it): a "source" lead on a
    binary rpm is still imported, as rpm -K still accepts it."""
    path = rpms_by_compression["gzip"]
    data = bytearray(path.read_bytes())
    data[6:8] = b"\x00\x01"
    bad = write(tmp_path / path.name, bytes(data))
    assert rpm_check(bad)[0]
    assert rows(scan_path(bad)) == rows(scan_path(path))


def test_a_real_source_rpm_is_still_skipped(archive_dir: Path) -> None:
    srpm = samples.build_source_rpm(archive_dir)
    assert rpm_check(srpm)[0]
    with pytest.raises(UnsupportedPackage, match="source rpm"):
        scan_path(srpm)


# --- rpm: payload -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gzip", "xz", "zstd", "bzip2", "none"])
def test_a_flipped_bit_in_the_payload_fails(rpms_by_compression: dict[str, Path],
                                            tmp_path: Path, kind: str) -> None:
    path = rpms_by_compression[kind]
    data = path.read_bytes()
    _start, end = header_span(data)
    bad = write(tmp_path / path.name, flipped(data, end + (len(data) - end) // 3, 5))
    assert not rpm_check(bad, "--nosignature")[0]
    with pytest.raises(PackageError) as info:
        scan_path(bad)
    assert not isinstance(info.value, UnsupportedPackage)


def build_id_offset(data: bytes, elf: samples.SampleElf, after: int) -> int:
    assert elf.build_id is not None
    return data.index(bytes.fromhex(elf.build_id), after)


@pytest.mark.parametrize("damaged", [(), (1004,), SIGNATURE_DIGEST_TAGS])
def test_the_dash_case(rpms_by_compression: dict[str, Path],
                       elf_by_label: dict[str, samples.SampleElf], tmp_path: Path,
                       damaged: tuple[int, ...]) -> None:
    """The issue's dash rpm: one flipped bit inside a build-id in an uncompressed payload,
    with SIGMD5's tag damaged too (and, last, every signature digest gone): a wrong build-id
    must never be stored."""
    path = rpms_by_compression["none"]
    data = rename_rpm_tags(path.read_bytes(), damaged)
    _start, end = header_span(data)
    at = build_id_offset(data, elf_by_label["shared-sha1"], end)
    bad = write(tmp_path / path.name, flipped(data, at + 3, 1))
    ok, out = rpm_check(bad)
    assert not ok, out
    with pytest.raises(IntegrityError, match="rpm payload corrupt"):
        scan_path(bad)


def test_file_digests_alone_catch_a_damaged_elf_member(
        rpms_by_compression: dict[str, Path], elf_by_label: dict[str, samples.SampleElf],
        tmp_path: Path) -> None:
    """No SIGMD5, no header digest, no payload digest: the header's FILEDIGESTS still catch
    the damaged ELF member as it streams by."""
    path = rpms_by_compression["none"]
    data = rename_rpm_tags(path.read_bytes(), SIGNATURE_DIGEST_TAGS)
    data = rename_rpm_tags(data, (5092, 5097), signature=False)
    _start, end = header_span(data)
    at = build_id_offset(data, elf_by_label["shared-sha1"], end)
    bad = write(tmp_path / path.name, flipped(data, at, 0))
    with pytest.raises(IntegrityError, match="libdemo.so.1.0.0 does not match its FILEDIGESTS"):
        scan_path(bad)


def test_a_package_with_no_digest_is_imported_unverified(
        rpms_by_compression: dict[str, Path], tmp_path: Path) -> None:
    path = rpms_by_compression["xz"]
    data = rename_rpm_tags(path.read_bytes(), SIGNATURE_DIGEST_TAGS)
    bare = write(tmp_path / path.name,
                 rename_rpm_tags(data, PAYLOAD_DIGEST_TAGS, signature=False))
    verbose = subprocess.run(["rpm", "-Kv", str(bare)], capture_output=True, text=True).stdout
    assert "digest: NOTFOUND" in verbose and "digest: OK" not in verbose  # rpm finds none
    result = scan_path(bare)
    assert not result.verified
    assert rows(result) == rows(scan_path(path))
    # Only the header digests gone: the payload digests in an unverified header do not make
    # the package verified.
    half = write(tmp_path / "half.rpm", data)
    assert not scan_path(half).verified


def test_signature_size_is_checked(rpms_by_compression: dict[str, Path], tmp_path: Path
                                   ) -> None:
    """Trailing bytes after the payload: rpm -K fails (SIGMD5 and SIZE); so do we."""
    path = rpms_by_compression["gzip"]
    bad = write(tmp_path / path.name, path.read_bytes() + b"\0" * 8)
    assert not rpm_check(bad)[0]
    with pytest.raises(PackageError):
        scan_path(bad)


def test_rpm_v6_style_digests(rpms_by_compression: dict[str, Path], tmp_path: Path) -> None:
    """v6 drops MD5 and SHA-1: the header is checked by SHA-256 and SHA3-256, the payload by
    its digests in the header; rpm -K (4.18) agrees on what it knows."""
    path = rpms_by_compression["zstd"]
    v6 = write(tmp_path / "v6.rpm", with_v6_signature(path.read_bytes()))
    ok, out = rpm_check(v6)
    assert ok and "MD5" not in subprocess.run(["rpm", "-Kv", str(v6)], capture_output=True,
                                               text=True).stdout
    rpm = RpmReader(io.BytesIO(v6.read_bytes()))
    for _ in rpm.members():
        pass
    assert rpm.digests[:2] == ["SHA3_256HEADER", "SHA256HEADER"] and rpm.verified
    assert "SIGMD5" not in rpm.digests and rpm.sigmd5 == ""
    assert rows(scan_path(v6)) == rows(scan_path(path))
    data = v6.read_bytes()
    start, end = header_span(data)
    bad_header = write(tmp_path / "h.rpm", flipped(data, data.index(b"demo\0", start, end)))
    assert not rpm_check(bad_header)[0]
    with pytest.raises(IntegrityError, match="its SHA3_256 .* SHA3_256HEADER"):
        scan_path(bad_header)
    bad_payload = write(tmp_path / "p.rpm", flipped(data, end + (len(data) - end) // 2))
    assert not rpm_check(bad_payload)[0]
    with pytest.raises(PackageError):
        scan_path(bad_payload)
    # A damaged SHA3-256 value: rpm 4.18 does not know tag 279 and says OK; we do not.
    sig = data.index(b"\0", data.index(b"\0", 96 + 16 + 32) + 1) - 10  # inside the 2nd digest
    bad_sha3 = write(tmp_path / "s.rpm", flipped(data, sig, 0))
    with pytest.raises(IntegrityError, match="SHA3_256HEADER"):
        scan_path(bad_sha3)


# --- deb --------------------------------------------------------------------------------------


def md5sum_check(deb: Path, workdir: Path) -> bool:
    """dpkg's own answer: unpack data and control with dpkg-deb, then md5sum -c md5sums."""
    root, control = workdir / "root", workdir / "control"
    root.mkdir(parents=True)
    tool("dpkg-deb", "-x", deb, root)
    tool("dpkg-deb", "-e", deb, control)
    proc = subprocess.run(["md5sum", "--quiet", "-c", str(control / "md5sums")], cwd=root,
                          capture_output=True)
    return proc.returncode == 0


def test_a_flipped_bit_in_an_uncompressed_deb_elf_member_fails(
        debs_by_compression: dict[str, Path], elf_by_label: dict[str, samples.SampleElf],
        tmp_path: Path) -> None:
    path = debs_by_compression["none"]
    data = path.read_bytes()
    at = build_id_offset(data, elf_by_label["exec-md5"], samples.payload_offset(path))
    bad = write(tmp_path / path.name, flipped(data, at + 2, 6))
    assert md5sum_check(path, tmp_path / "good") and not md5sum_check(bad, tmp_path / "bad")
    with pytest.raises(IntegrityError, match="hello-md5 does not match its md5sums entry"):
        scan_path(bad)


def test_debs_with_md5sums_are_verified_without_unverified(
        sample_elves: list[samples.SampleElf], tmp_path: Path) -> None:
    files = samples.files_of(sample_elves, "exec-sha1", "shared-sha1")
    with_sums = samples.build_deb(tmp_path, "a", "1.0-1", "amd64", files, "none")
    without = samples.build_deb(tmp_path, "b", "1.0-1", "amd64", files, "none", md5sums=False)
    assert scan_path(with_sums).verified
    result = scan_path(without)
    assert not result.verified
    assert rows(result) == rows(scan_path(with_sums))


def rebuild_deb(path: Path, out: Path, rename: dict[bytes, bytes] | None = None,
                replace: dict[bytes, bytes] | None = None) -> Path:
    """The deb's members (as the real ``ar`` lists them), renamed or with new contents."""
    scratch = out.parent / (out.name + ".d")
    scratch.mkdir()
    subprocess.run(["ar", "x", str(path.resolve())], cwd=scratch, check=True)
    names = tool("ar", "t", path).decode().split()
    members = []
    for name in names:
        body = (replace or {}).get(name.encode(), (scratch / name).read_bytes())
        members.append(((rename or {}).get(name.encode(), name.encode()), body))
    out.write_bytes(ar_archive(members))
    return out


def test_damaged_deb_names_fail_instead_of_being_skipped(
        debs_by_compression: dict[str, Path], tmp_path: Path) -> None:
    """The issue's "unknown compression .zst\\x1f" and "deb format version b'\\x13.0'"."""
    path = debs_by_compression["zstd"]
    odd = rebuild_deb(path, tmp_path / "odd.deb", rename={b"data.tar.zst": b"data.tar.zst\x1f"})
    with pytest.raises(PackageError, match="is corrupt") as info:
        scan_path(odd)
    assert not isinstance(info.value, UnsupportedPackage)
    version = rebuild_deb(path, tmp_path / "version.deb",
                          replace={b"debian-binary": b"\x13.0\n"})
    with pytest.raises(PackageError, match="debian-binary is corrupt") as info:
        scan_path(version)
    assert not isinstance(info.value, UnsupportedPackage)
    wrong = rebuild_deb(path, tmp_path / "wrong.deb", rename={b"data.tar.zst": b"data.tar.xz"})
    with pytest.raises(PackageError, match="does not hold xz data"):
        scan_path(wrong)
    flipped_suffix = rebuild_deb(path, tmp_path / "xy.deb",
                                 rename={b"data.tar.zst": b"data.tar.zsu"})
    with pytest.raises(PackageError, match="is corrupt: it holds zstd data"):
        scan_path(flipped_suffix)
        # A well-formed future format is still "unsupported", as dpkg says too.
    future = rebuild_deb(path, tmp_path / "future.deb", replace={b"debian-binary": b"3.0\n"})
    with pytest.raises(UnsupportedPackage, match="format version"):
        scan_path(future)


# --- the run's summary ------------------------------------------------------------------------


def test_the_summary_counts_unverified_packages(
        sample_elves: list[samples.SampleElf], tmp_path: Path) -> None:
    files = samples.files_of(sample_elves, "exec-md5")
    (tmp_path / "in").mkdir()
    samples.build_deb(tmp_path / "in", "a", "1.0-1", "amd64", files, "gzip")
    samples.build_deb(tmp_path / "in", "b", "1.0-1", "amd64", files, "gzip", md5sums=False)
    stored: list[PackageScan] = []

    def store(scan: PackageScan) -> tuple[bool, int]:
        stored.append(scan)
        return True, len(scan.elves)

    summary = run_import([tmp_path / "in"], ScanOptions(), jobs=1, store=store)
    assert (summary.packages, summary.unverified, summary.failed) == (2, 1, 0)
    assert summary.as_dict()["unverified"] == 1
    assert "unverified: 1" in summary.line()
    assert [w for w in summary.warnings if "unverified" in w][0].split("/")[-1].startswith(
        "b_1.0-1_amd64.deb: unverified")
