"""Fixtures for the archive-reader tests: real rpms and debs in every compression, built once
per run with rpmbuild / dpkg-deb (darkimport.samples). Loaded by the test modules through
``pytest_plugins``."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkimport import samples

# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archives")


@pytest.fixture(scope="session")
def rpms_by_compression(archive_dir: Path, sample_elves: list[samples.SampleElf]
                        ) -> dict[str, Path]:
    """One real rpm per payload compression, each with a hard-linked pair and a symlink-free
    mix of ELF kinds."""
    files = samples.files_of(sample_elves, "exec-sha1", "exec-sha1-hardlink", "exec-md5",
                             "shared-sha1", "relocatable-sha1", "exec-none")
    return {
        kind: samples.build_rpm(archive_dir, "demo", "1.0", "2.fc40", files, kind,
                                epoch=3 if kind == "zstd" else None)
        for kind in samples.RPM_PAYLOADS
    }


@pytest.fixture(scope="session")
def debs_by_compression(archive_dir: Path, sample_elves: list[samples.SampleElf]
                        ) -> dict[str, Path]:
    files = samples.files_of(sample_elves, "exec-sha1", "exec-sha1-hardlink", "exec-md5",
                             "shared-sha1", "relocatable-sha1", "exec-none")
    return {
        kind: samples.build_deb(archive_dir, "demo", "1:1.0-2+deb12u1", "amd64",
                                files, kind, control={"Source": "demo-src (1.0-2)"})
        for kind in samples.DEB_COMPRESSIONS
    }
