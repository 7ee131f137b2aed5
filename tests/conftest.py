"""Fixtures shared across the suite; package-specific ones live in tests/<pkg>/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.oracle import ExpectedRow, expected_rows


@dataclass(frozen=True)
class SampleSet:
    directory: Path
    packages: list[Path]
    expected: list[ExpectedRow]  # every (build-id, path, nvra) per the real tools + readelf


@pytest.fixture(scope="session")
def sample_set(tmp_path_factory: pytest.TempPathFactory) -> SampleSet:
    """The demo's sample packages, built for real (gcc, rpmbuild, dpkg-deb) once per run."""
    from darkimport import samples

    directory = tmp_path_factory.mktemp("sample-set")
    packages = [p for p in samples.build_sample_set(directory) if not p.name.endswith(".src.rpm")]
    expected = sorted(
        {row for p in packages for row in expected_rows(p)},
        key=lambda r: (r.nvra, r.path),
    )
    assert expected, "the sample set must contain ELF files with build-ids"
    return SampleSet(directory, packages, expected)
