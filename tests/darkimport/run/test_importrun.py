"""The import run: which files a directory import picks up, end to end on real packages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from darkimport import samples
from darkimport.run.importrun import find_packages, run_import
from darkimport.run.scan import PACKAGE_SUFFIXES, ScanOptions
from tests.helpers import elf_rows
from tests.oracle import expected_rows


def test_a_directory_yields_every_package_suffix_and_nothing_else(tmp_path: Path) -> None:
    for name in ("a.rpm", "b.deb", "c.ddeb", "sub/d.udeb", "e.txt", "f.rpm.sig", "g.debx"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * len(name))
    found, missing = find_packages([tmp_path])
    assert missing == []
    assert sorted(p.name for p in found) == ["a.rpm", "b.deb", "c.ddeb", "d.udeb"]
    assert {Path(p.name).suffix for p in found} == set(PACKAGE_SUFFIXES)


@pytest.mark.django_db(transaction=True)
def test_a_udeb_in_a_directory_is_imported(tmp_path: Path,
                                           elf_by_label: dict[str, samples.SampleElf]) -> None:
    """A udeb is a deb under another name (debian-installer's packages): dpkg-deb builds it."""
    deb = samples.build_deb(tmp_path, "udeb-demo", "1.0-1", "amd64",
                            samples.files_of(elf_by_label.values(), "exec-sha1", "shared-sha1"))
    tree = tmp_path / "tree"
    tree.mkdir()
    udeb = tree / deb.with_suffix(".udeb").name
    shutil.move(deb, udeb)
    expected = expected_rows(udeb)  # dpkg-deb -x and readelf
    assert expected
    summary = run_import([tree], ScanOptions(), jobs=1)
    assert (summary.packages, summary.failed) == (1, 0), summary.failures
    assert elf_rows() == {(r.build_id, r.path, r.nvra) for r in expected}
