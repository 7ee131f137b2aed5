"""Session fixtures for the darkimport tests: real ELF files and packages built once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkimport import samples


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
