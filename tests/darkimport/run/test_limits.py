"""Bounded resources per package (darkcore.limits): decompression bombs, member floods,
oversized ELF members and warning floods each fail the package (or are cut short) with a
clear reason. The packages are real, made by dpkg-deb and rpmbuild from sparse files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from darkcore.config import ConfigError
from darkcore.errors import LimitExceeded
from darkcore.limits import Limits, parse_size
from darkimport import samples
from darkimport.run import scan
from darkimport.run.scan import ScanOptions, scan_path

pytest_plugins = ["tests.darkcore.conftest_archives"]  # fixtures: real packages

MIB = 1 << 20
BOMB = 256 * MIB  # zeros after a real ELF header; compresses to a few KB


@pytest.fixture(scope="module")
def bomb_elf(tmp_path_factory: pytest.TempPathFactory,
             elf_by_label: dict[str, samples.SampleElf]) -> Path:
    """A real ELF file's first 4 KiB (header, program headers, notes) followed by zeros, as a
    sparse file: what the issue's 325 KB deb held (2 GiB there; 256 MiB here)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb"
    with open(path, "wb") as f:
        f.write(elf_by_label["exec-sha1"].source.read_bytes()[:4096])
        f.truncate(BOMB)
    return path


@pytest.fixture(scope="module")
def bomb_deb(bomb_elf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samples.build_deb(tmp_path_factory.mktemp("bomb-deb"), "bomb", "1.0-1", "amd64",
                             [(bomb_elf, "/usr/bin/bomb")], "zstd")


@pytest.fixture(scope="module")
def bomb_rpm(bomb_elf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samples.build_rpm(tmp_path_factory.mktemp("bomb-rpm"), "bomb", "1.0", "1.fc40",
                             [(bomb_elf, "/usr/bin/bomb")], "xz")


def options(**limits: int) -> ScanOptions:
    return ScanOptions(limits=Limits(**limits))


@pytest.mark.parametrize("which", ["deb", "rpm"])
def test_a_decompression_bomb_fails_at_the_unpacked_limit(bomb_deb: Path, bomb_rpm: Path,
                                                          which: str) -> None:
    package = bomb_deb if which == "deb" else bomb_rpm
    assert package.stat().st_size < BOMB // 1000  # it really is a bomb
    with pytest.raises(LimitExceeded, match=r"decompresses to more than 67108864 bytes "
                                            r"\(limit DARKSERVER_MAX_UNPACKED_BYTES\)"):
        scan_path(package, options(unpacked_bytes=64 * MIB))


@pytest.mark.parametrize("which", ["deb", "rpm"])
def test_an_oversized_elf_member_fails_before_it_is_held(bomb_deb: Path, bomb_rpm: Path,
                                                         which: str) -> None:
    package = bomb_deb if which == "deb" else bomb_rpm
    with pytest.raises(LimitExceeded, match=r"/usr/bin/bomb: 268435456 bytes to hold, more "
                                            r"than 16777216 \(limit DARKSERVER_MAX_SPOOL_MEMBER"):
        scan_path(package, options(spool_member=16 * MIB))


def test_within_the_limits_the_bomb_spools_as_a_sparse_file(
        bomb_deb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zeros become a hole in the anonymous spool: disk blocks stay near the real data."""
    blocks: list[int] = []
    real = scan._spool

    def spy(head: bytes, size: int, data: scan._Data, spool) -> None:  # type: ignore[no-untyped-def]
        real(head, size, data, spool)
        st = os.fstat(spool.fileno())
        blocks.append(st.st_blocks * 512)
        assert st.st_size == size

    monkeypatch.setattr(scan, "_spool", spy)
    result = scan_path(bomb_deb)
    assert blocks and blocks[0] < 4 * MIB, blocks
    assert result.elf_files == 1 and result.verified  # and its md5sums entry matched


def test_elf_members_held_per_package_are_bounded(
        sample_elves: list[samples.SampleElf], tmp_path: Path) -> None:
    files = samples.files_of(sample_elves, "exec-sha1", "exec-md5", "shared-sha1")
    deb = samples.build_deb(tmp_path, "three", "1.0-1", "amd64", files, "gzip")
    sizes = sorted(source.stat().st_size for source, _ in files)
    with pytest.raises(LimitExceeded, match="limit DARKSERVER_MAX_SPOOL_PACKAGE"):
        scan_path(deb, options(spool_package=sizes[0] + sizes[1] - 1))
    assert len(scan_path(deb, options(spool_package=sum(sizes))).elves) == 3


@pytest.fixture(scope="module")
def flood_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 tiny members that start like ELF files and are not (each one a warning)."""
    work = tmp_path_factory.mktemp("flood")
    junk = work / "src"
    junk.mkdir()
    files = []
    for i in range(3000):
        path = junk / f"f{i}"
        path.write_bytes(b"\x7fELF" + i.to_bytes(4, "little"))
        files.append((path, f"/usr/lib/flood/f{i:05}"))
    return samples.build_deb(work, "flood", "1.0-1", "amd64", files, "xz")


def test_a_member_flood_fails_at_the_member_limit(flood_deb: Path) -> None:
    with pytest.raises(LimitExceeded, match=r"more than 1000 members \(limit "
                                            r"DARKSERVER_MAX_MEMBERS\)"):
        scan_path(flood_deb, options(members=1000))


def test_warnings_are_capped_with_one_summary_line(flood_deb: Path) -> None:
    result = scan_path(flood_deb, options(warnings=50))
    assert len(result.warnings) == 51
    assert all("unreadable ELF file" in w for w in result.warnings[:50])
    assert result.warnings[50] == "... and 2950 more warnings"
    assert (result.elf_files, result.without_build_id) == (3000, 3000)


def test_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARKSERVER_MAX_UNPACKED_BYTES", "3G")
    monkeypatch.setenv("DARKSERVER_MAX_MEMBERS", "500")
    monkeypatch.setenv("DARKSERVER_MAX_SPOOL_MEMBER", "64MiB")
    limits = Limits.from_settings()
    assert (limits.unpacked_bytes, limits.members, limits.spool_member) == (
        3 << 30, 500, 64 << 20)
    assert limits.warnings == Limits().warnings  # unset: the default
    assert parse_size("1024", "x") == 1024 and parse_size("2k", "x") == 2048
    monkeypatch.setenv("DARKSERVER_MAX_MEMBERS", "lots")
    with pytest.raises(ConfigError, match=r"DARKSERVER_MAX_MEMBERS='lots': want a size"):
        Limits.from_settings()
