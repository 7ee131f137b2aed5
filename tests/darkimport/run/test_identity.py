"""Known packages are skipped before any payload is read; a changed file is read again."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from darkimport import samples
from darkimport.run import identity
from darkimport.run.importrun import run_import
from darkimport.run.scan import ScanOptions
from darkserver.lookup.models import ElfFile, ImportRun, Package
from tests.helpers import BIN, run_cmd

pytestmark = pytest.mark.django_db(transaction=True)


def ids_of(nvra: str) -> set[str]:
    return {bytes(b).hex() for b in
            ElfFile.objects.filter(package__nvra=nvra).values_list("build_id", flat=True)}


def test_unchanged_tree_is_skipped_unread_and_rescan_reads_it(sample_set, monkeypatch) -> None:
    first = run_import([sample_set.directory], ScanOptions(), jobs=2)
    assert first.packages == len(sample_set.packages) and first.bytes_read > 0
    # A second run reads no payload: the scanner would fail loudly if it were called.
    import darkimport.run.importrun as importrun

    def no_scan(path: str, options: ScanOptions) -> importrun.Outcome:
        raise AssertionError(f"{path} was read although it is known")

    monkeypatch.setattr(importrun, "scan_one", no_scan)
    second = run_import([sample_set.directory], ScanOptions(), jobs=1)
    assert (second.known, second.packages, second.already, second.failed) == (
        len(sample_set.packages), 0, 0, 0)
    monkeypatch.undo()
    rescan = run_import([sample_set.directory], ScanOptions(), jobs=1, rescan=True)
    assert (rescan.known, rescan.already) == (0, len(sample_set.packages))
    assert rescan.bytes_read == first.bytes_read
    # Each run is in the audit table with its counts.
    runs = list(ImportRun.objects.order_by("id").values_list("status", "new", "known", "failed"))
    n = len(sample_set.packages)
    assert runs == [("done", n, 0, 0), ("done", 0, n, 0), ("done", 0, n, 0)]


def test_changed_file_under_the_same_name_is_read_again(sample_elves, tmp_path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    old = samples.build_deb(tmp_path, "demo", "1.0-1", "amd64",
                            samples.files_of(sample_elves, "exec-sha1"), "xz")
    new = samples.build_deb(tmp_path, "demo", "1.0-1", "amd64",
                            samples.files_of(sample_elves, "exec-md5"), "xz")
    assert old.name == new.name
    shutil.copy(old, one / old.name)
    shutil.copy(new, two / new.name)
    by_label = {e.label: e.build_id for e in sample_elves}
    assert run_import([one], ScanOptions(), jobs=1).packages == 1
    assert ids_of("demo_1.0-1_amd64") == {by_label["exec-sha1"]}
    # Same name, other content: not known, read again, rows follow the file now served.
    again = run_import([two], ScanOptions(), jobs=1)
    assert (again.known, again.replaced, again.packages) == (0, 1, 1)
    assert ids_of("demo_1.0-1_amd64") == {by_label["exec-md5"]}
    assert Package.objects.get().sha256 == identity.file_sha256(two / new.name)
    assert any("content changed" in w for w in again.warnings)
    # Same size, same mtime, other bytes is still not "known": the identity is the digest.
    stat = os.stat(one / old.name)
    same_size = bytearray((one / old.name).read_bytes())
    same_size[-1] ^= 0xFF
    (two / new.name).write_bytes(bytes(same_size))
    os.utime(two / new.name, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    stored = identity.stored_identities([old.name])[old.name]
    assert not identity.is_known(two / new.name, stat.st_size, stored)


def test_resigned_rpm_is_known_by_sigmd5(sample_set, tmp_path) -> None:
    rpm = next(p for p in sample_set.packages if p.suffix == ".rpm")
    assert run_import([rpm], ScanOptions(), jobs=1).packages == 1
    # Other file bytes outside what SIGMD5 covers, as in a re-signed rpm: here the lead's
    # name field (rpm ignores it), so SHA-256 differs and SIGMD5 is equal.
    data = bytearray(rpm.read_bytes())
    assert data[75] == 0
    data[75] = ord("x")
    copy = tmp_path / rpm.name
    copy.write_bytes(bytes(data))
    stored = identity.stored_identities([rpm.name])[rpm.name]
    assert stored[0].sha256 != identity.file_sha256(copy)
    assert identity.is_known(copy, copy.stat().st_size, stored)
    todo, known = identity.split_known([copy], jobs=1)
    assert (todo, known) == ([], [copy])


def test_known_check_costs_no_read_for_new_names(sample_set, tmp_path) -> None:
    fresh: list[Path] = list(sample_set.packages)
    todo, known = identity.split_known(fresh, jobs=2)
    assert (todo, known) == (fresh, [])


def test_cli_rescan_and_history_table(sample_set, tmp_path) -> None:
    env = {"DARKSERVER_DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3"}
    importer = [str(BIN / "darkserver-import"), "--json", str(sample_set.directory)]
    first = json.loads(run_cmd(importer, env=env).stdout)
    second = json.loads(run_cmd(importer, env=env).stdout)
    rescan = json.loads(run_cmd(importer[:2] + ["--rescan"] + importer[2:], env=env).stdout)
    n = len(sample_set.packages)
    assert [(s["packages"], s["known"], s["already"]) for s in (first, second, rescan)] == [
        (n, 0, 0), (0, n, 0), (0, 0, n)]
    table = run_cmd([str(BIN / "darkserver-import"), "history"], env=env).stdout.splitlines()
    assert table[0].split()[:8] == ["started", "(UTC)", "kind", "status", "new", "known",
                                    "failed", "MB"]
    # Newest first: the rescan and the skip-all run read (known) everything, the first imported.
    counts = [line.split()[3:7] for line in table[1:]]
    assert counts == [["done", "0", str(n), "0"], ["done", "0", str(n), "0"],
                      ["done", str(n), "0", "0"]]
    assert all(line.endswith(str(sample_set.directory)) for line in table[1:])
