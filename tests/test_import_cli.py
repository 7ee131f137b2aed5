"""The importer end to end: real packages in, database rows out, compared with the real tools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from darkimport import samples
from darkimport.run.importrun import run_import
from darkimport.run.scan import ScanOptions
from darkserver.lookup.models import Build, ElfFile, Package
from tests.helpers import BIN, elf_rows, run_cmd
from tests.oracle import expected_rows

pytestmark = pytest.mark.django_db(transaction=True)

OPTIONS = ScanOptions(url_templates={"rpm": "https://pkgs.example/{name}/{filename}",
                                     "deb": "https://debs.example/{source}/{filename}"})


def db_rows() -> set[tuple[str, str, str]]:
    return elf_rows()


def test_import_matches_readelf_on_every_file(sample_set) -> None:
    summary = run_import([sample_set.directory], OPTIONS, jobs=2)
    assert summary.failed == 0, summary.failures
    assert summary.packages == len(sample_set.packages)
    assert db_rows() == {(r.build_id, r.path, r.nvra) for r in sample_set.expected}
    assert summary.rows == len(sample_set.expected)
    assert summary.build_ids == len({(r.nvra, r.build_id) for r in sample_set.expected})
    # The dwz multifile and the separate debug files are rows of their own, marked debug.
    dwz = ElfFile.objects.filter(path__path__startswith="/usr/lib/debug/.dwz/")
    assert dwz.exists() and all(row.debug for row in dwz)
    assert not ElfFile.objects.filter(path__path__startswith="/usr/bin/", debug=True).exists()
    # Every package row carries its URL from the template and a checksum of the file.
    for package in Package.objects.all():
        assert package.url.endswith("/" + package.filename)
        assert len(package.sha256) == 64


def test_reimport_is_a_no_op(sample_set) -> None:
    first = run_import([sample_set.directory], OPTIONS, jobs=1)
    rows = ElfFile.objects.count()
    second = run_import([sample_set.directory], OPTIONS, jobs=2)
    assert first.packages == len(sample_set.packages)
    # Skipped by identity (size + SHA-256), no package read: nothing decoded.
    assert second.packages == 0 and second.known == len(sample_set.packages)
    assert second.already == 0 and second.bytes_read == 0
    assert ElfFile.objects.count() == rows
    assert Package.objects.count() == len(sample_set.packages)


def test_broken_packages_leave_nothing_and_the_batch_goes_on(sample_set, tmp_path) -> None:
    rpms = sorted(p for p in sample_set.packages if p.suffix == ".rpm")
    debs = sorted(p for p in sample_set.packages if p.suffix == ".deb")
    good, broken_sources = rpms[0], [rpms[1], debs[0]]
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(good, batch / good.name)
    broken = [
        samples.truncate_copy(broken_sources[0], batch / ("trunc-" + broken_sources[0].name), 0.6),
        samples.corrupt_copy(broken_sources[1], batch / ("corrupt-" + broken_sources[1].name),
                             broken_sources[1].stat().st_size - 200),
    ]
    summary = run_import([batch], OPTIONS, jobs=2)
    assert summary.failed == 2
    assert sorted(Path(name).name for name, _ in summary.failures) == sorted(b.name for b in broken)
    assert all(reason for _, reason in summary.failures)
    assert summary.packages == 1
    good_rows = {(r.build_id, r.path, r.nvra) for r in expected_rows(good)}
    assert db_rows() == good_rows
    assert Build.objects.count() == 1


def test_cli_exit_status_summary_and_json(sample_set, tmp_path) -> None:
    db = f"sqlite:///{tmp_path}/cli.sqlite3"
    ok = run_cmd([str(BIN / "darkserver-import"), "--json", str(sample_set.directory)],
                 env={"DARKSERVER_DATABASE_URL": db})
    summary = json.loads(ok.stdout)
    assert summary["packages"] == len(sample_set.packages)
    assert summary["failed"] == 0 and summary["rows"] == len(sample_set.expected)

    bad = tmp_path / "not-a-package.rpm"
    bad.write_bytes(b"this is not an rpm at all" * 10)
    failed = run_cmd([str(BIN / "darkserver-import"), str(bad), str(tmp_path / "missing.deb")],
                     env={"DARKSERVER_DATABASE_URL": db}, check=False)
    assert failed.returncode == 1
    assert "failed: 2" in failed.stdout
    assert "not-a-package.rpm" in failed.stderr and "missing.deb" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_source_rpm_is_skipped_with_a_message(tmp_path) -> None:
    srpm = samples.build_source_rpm(tmp_path)
    summary = run_import([srpm], OPTIONS, jobs=1)
    assert summary.skipped == 1 and summary.failed == 0 and summary.packages == 0
    assert "source rpm" in summary.warnings[0]
    assert Package.objects.count() == 0


def test_cli_damaged_package_fails_with_its_reason_and_unverified_is_counted(
        sample_set, tmp_path) -> None:
    """A header-damaged rpm (used to be skipped as "unsupported") fails: exit 1, the reason,
    no rows; a deb without md5sums is imported and counted unverified; a bad limit setting is
    a clear error."""
    db = f"sqlite:///{tmp_path}/cli.sqlite3"
    rpm = next(p for p in sample_set.packages if p.name.startswith("hello-1.0"))
    data = bytearray(rpm.read_bytes())
    data[data.index(b"gzip\0", 1000)] ^= 0x04  # PAYLOADCOMPRESSOR, inside the main header
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / rpm.name).write_bytes(bytes(data))
    elves = samples.compile_samples(tmp_path / "elf")
    samples.build_deb(batch, "bare", "1.0-1", "amd64", samples.files_of(elves, "exec-md5"),
                      "gzip", md5sums=False)
    proc = run_cmd([str(BIN / "darkserver-import"), "--json", str(batch)],
                   env={"DARKSERVER_DATABASE_URL": db}, check=False)
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert (summary["failed"], summary["skipped"], summary["packages"],
            summary["unverified"]) == (1, 0, 1, 1)
    assert "rpm header corrupt" in summary["failures"][0]["reason"]
    assert summary["rows"] == 1  # the deb's one ELF file; nothing of the rpm
    bad = run_cmd([str(BIN / "darkserver-import"), str(batch)],
                  env={"DARKSERVER_DATABASE_URL": db, "DARKSERVER_MAX_MEMBERS": "many"},
                  check=False)
    assert bad.returncode == 2 and "DARKSERVER_MAX_MEMBERS" in bad.stderr
    assert "Traceback" not in bad.stderr
