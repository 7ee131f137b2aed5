"""Fixtures shared across the suite; package-specific ones live in tests/<pkg>/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from darkimport import samples
from tests.oracle import ExpectedRow, expected_rows

# Programs compiled with gcc and their cores: used by tests/darkclient and tests/darkcore.
pytest_plugins = ["tests.programs"]


@dataclass(frozen=True)
class SampleSet:
    directory: Path
    packages: list[Path]
    expected: list[ExpectedRow]  # every (build-id, path, nvra) per the real tools + readelf


@pytest.fixture(scope="session")
def sample_set(tmp_path_factory: pytest.TempPathFactory) -> SampleSet:
    """The demo's sample packages, built for real (gcc, rpmbuild, dpkg-deb) once per run."""
    directory = tmp_path_factory.mktemp("sample-set")
    packages = [p for p in samples.build_sample_set(directory) if not p.name.endswith(".src.rpm")]
    expected = sorted(
        {row for p in packages for row in expected_rows(p)},
        key=lambda r: (r.nvra, r.path),
    )
    assert expected, "the sample set must contain ELF files with build-ids"
    return SampleSet(directory, packages, expected)

@pytest.fixture(scope="session")
def sample_elves(tmp_path_factory: pytest.TempPathFactory) -> list[samples.SampleElf]:
    """Every sample ELF file, compiled with gcc/ld/objcopy/eu-strip; ids from readelf."""
    return samples.compile_samples(tmp_path_factory.mktemp("elves"))


@pytest.fixture(scope="session")
def elf_by_label(sample_elves: list[samples.SampleElf]) -> dict[str, samples.SampleElf]:
    return {e.label: e for e in sample_elves}


@pytest.fixture(scope="session")
def large_rpm(tmp_path_factory: pytest.TempPathFactory,
              sample_elves: list[samples.SampleElf]) -> Path:
    """An rpm with a 4 GiB (sparse, zero) file, so its payload is stripped cpio (~20 s)."""
    return samples.build_large_rpm(
        tmp_path_factory.mktemp("large-rpm"),
        samples.files_of(sample_elves, "exec-sha1", "shared-sha1"),
    )
