"""Fixtures shared across the suite; package-specific ones live in tests/<pkg>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from darkcore import settings as settings_registry
from darkimport import samples
from tests.oracle import ExpectedRow, expected_rows

# Programs compiled with gcc and their cores: used by tests/darkclient and tests/darkcore.
pytest_plugins = ["tests.programs"]


class _MonkeyPatch(pytest.MonkeyPatch):
    """pytest's monkeypatch, re-reading the settings registry whenever the environment changes:
    darkcore.settings reads each value once per process."""

    def setenv(self, name: str, value: str, prepend: str | None = None) -> None:
        super().setenv(name, value, prepend)
        settings_registry.reload()

    def delenv(self, name: str, raising: bool = True) -> None:
        super().delenv(name, raising)
        settings_registry.reload()

    def undo(self) -> None:
        super().undo()
        settings_registry.reload()


@pytest.fixture
def monkeypatch() -> Iterator[pytest.MonkeyPatch]:
    patch = _MonkeyPatch()
    yield patch
    patch.undo()


@pytest.fixture(autouse=True)
def _fresh_settings() -> None:
    """Each test starts from the environment as it is, not as an earlier test left it read."""
    settings_registry.reload()


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
