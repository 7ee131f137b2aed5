"""The database writer: one transaction per package, idempotent, race-safe."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from darkimport.run import store
from darkimport.run.records import ElfRecord, PackageMeta, PackageScan, Provenance
from darkserver.lookup.models import Build, ElfFile, Package, Path, path_key
from tests.helpers import elf_rows

pytestmark = pytest.mark.django_db(transaction=True)


def make_scan(nvra_release: str = "1.fc40", files: int = 3) -> PackageScan:
    meta = PackageMeta(
        kind="rpm", name="demo", epoch=None, version="1.0", release=nvra_release,
        arch="x86_64", source_name="demo", filename=f"demo-1.0-{nvra_release}.x86_64.rpm",
        nvra=f"demo-1.0-{nvra_release}.x86_64", distro="fc40", size=1234, sha256="ab" * 32,
        url="https://pkgs.example/demo.rpm",
    )
    elves = [
        ElfRecord(bytes([i % 256, i // 256]) * 10, f"/usr/bin/demo{i}", 3, 62, 64, False, False)
        for i in range(files)
    ]
    return PackageScan(meta=meta, elves=elves, elf_files=files + 1, without_build_id=1)


def test_store_writes_every_row_with_its_path_row() -> None:
    scan = make_scan()
    result = store.store_scan(scan, Provenance(instance="primary", koji_build_id=42))
    assert result.inserted and result.rows == 3
    build = Build.objects.get()
    assert (build.instance, build.koji_build_id, build.distro) == ("primary", 42, "fc40")
    package = Package.objects.get()
    assert (package.elf_files, package.without_build_id) == (4, 1)
    assert elf_rows() == {(e.build_id.hex(), e.path, scan.meta.nvra) for e in scan.elves}
    # The path texts, once each under the package's name, found by their 16-byte key.
    assert set(Path.objects.values_list("path", "scope", "path_key")) == {
        (e.path, b"demo", path_key(e.path)) for e in scan.elves}


def test_second_store_of_the_same_package_is_a_no_op() -> None:
    assert store.store_scan(make_scan()).inserted
    again = store.store_scan(make_scan())
    assert not again.inserted and again.rows == 0
    assert ElfFile.objects.count() == 3 and Package.objects.count() == 1


def test_packages_of_one_build_share_the_build_row() -> None:
    a = make_scan()
    b = make_scan()
    b.meta.name, b.meta.nvra = "demo-devel", "demo-devel-1.0-1.fc40.x86_64"
    store.store_scan(a)
    store.store_scan(b)
    assert Build.objects.count() == 1 and Package.objects.count() == 2


def test_a_failure_mid_package_leaves_nothing(monkeypatch) -> None:
    scan = make_scan(files=1200)  # three INSERT batches
    calls = {"n": 0}
    from django.db.backends.utils import CursorWrapper

    real = CursorWrapper.executemany

    def failing_executemany(self, sql, param_list):
        calls["n"] += 1
        if calls["n"] == 2:
            raise DatabaseError("disk full (injected)")
        return real(self, sql, param_list)

    monkeypatch.setattr(CursorWrapper, "executemany", failing_executemany)
    with pytest.raises(DatabaseError):
        store.store_scan(scan)
    assert calls["n"] == 2
    assert (Build.objects.count(), Package.objects.count(), ElfFile.objects.count()) == (0, 0, 0)


def test_losing_a_race_to_another_importer_is_not_an_error(monkeypatch) -> None:
    store.store_scan(make_scan())
    # The other importer committed between our existence check and our insert.
    monkeypatch.setattr(store, "stored_package", lambda nvra: None)
    result = store.store_scan(make_scan())
    assert not result.inserted
    assert Package.objects.count() == 1 and ElfFile.objects.count() == 3


def test_duplicate_paths_in_a_scan_give_one_row() -> None:
    scan = make_scan(files=2)
    scan.elves.append(scan.elves[0])
    assert store.store_scan(scan).rows == 2


# --- the statistics counters -------------------------------------------------------------------


def _counted() -> dict[str, int]:
    """The totals kept (the generation is no total: see test_every_import_raises_the_generation)."""
    from darkserver.lookup import counters
    from darkserver.lookup.models import Counter

    return {c.name: c.value for c in Counter.objects.all()
            if c.value and c.name != counters.GENERATION}


def test_every_import_raises_the_generation() -> None:
    """The web caches whole answers, "not found" too (lookup/answercache.py): a new package
    changes answers, so its transaction raises the generation; a package already there does
    not."""
    from darkserver.lookup import counters
    from darkserver.lookup.models import Counter

    def generation() -> int:
        found = Counter.objects.filter(name=counters.GENERATION).values_list("value", flat=True)
        return int(found.first() or 0)

    store.store_scan(make_scan("1.fc40"))
    first = generation()
    assert first > 0
    assert not store.store_scan(make_scan("1.fc40")).inserted
    assert generation() == first
    store.store_scan(make_scan("2.fc40"))
    assert generation() > first


def test_counters_kept_by_the_importer_equal_a_full_count(sample_set) -> None:
    from darkimport.run.scan import scan_path
    from darkserver.lookup import counters

    for path in sample_set.packages:
        store.store_scan(scan_path(path))
    # Shared build-ids: the same binaries again in another package, and a package again.
    again = make_scan("2.fc41")
    store.store_scan(again)
    store.store_scan(make_scan("3.fc41"))
    assert not store.store_scan(make_scan("3.fc41")).inserted
    expected = {k: v for k, v in counters.count_rows().items() if v}
    assert _counted() == expected
    assert expected[counters.BUILD_IDS] == len(
        {bytes(b) for b in ElfFile.objects.values_list("build_id", flat=True)})
    assert counters.stats()["packages"] == Package.objects.count()


def test_counters_stay_exact_when_importers_race() -> None:
    import threading

    from django.db import connection

    from darkserver.lookup import counters

    if connection.vendor == "sqlite":
        # The in-memory test database refuses concurrent writers outright ("table is locked");
        # SQLite's writers are serialised anyway. The race is MariaDB's (second pass).
        pytest.skip("concurrent writers need a server database")
    # Eight packages with the same twenty build-ids, stored by eight threads at once.
    scans = [make_scan(f"{n}.fc40", files=20) for n in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(scans))

    def store_one(scan: PackageScan) -> None:
        try:
            barrier.wait()
            store.store_scan(scan)
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=store_one, args=(s,)) for s in scans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Package.objects.count() == 8
    assert _counted() == {k: v for k, v in counters.count_rows().items() if v}
    assert _counted()[counters.BUILD_IDS] == 20


def test_identity_filled_in_and_changed_content_replaces_rows() -> None:
    scan = make_scan()
    scan.meta.sha256, scan.meta.size = "", 0  # as a Koji header import knows it
    assert store.store_scan(scan).inserted
    again = make_scan()  # the same package read from its file: now with size and SHA-256
    result = store.store_scan(again)
    assert (result.inserted, result.replaced) == (False, False)
    assert Package.objects.values_list("sha256", "size").get() == ("ab" * 32, 1234)
    # Same name, other bytes, other ELF files: the rows follow the new content.
    changed = make_scan(files=2)
    changed.meta.sha256 = "cd" * 32
    changed.elves = [ElfRecord(b"\x99" * 20, "/usr/bin/new", 3, 62, 64, False, False)]
    result = store.store_scan(changed)
    assert (result.inserted, result.replaced, result.rows) == (True, True, 1)
    assert Package.objects.values_list("sha256", flat=True).get() == "cd" * 32
    assert {r[1] for r in elf_rows()} == {"/usr/bin/new"}
    # rpms compare by SIGMD5: a re-signed copy (other SHA-256, same SIGMD5) is the same.
    Package.objects.update(sigmd5="0f" * 16)
    resigned = make_scan()
    resigned.meta.sha256, resigned.meta.sigmd5 = "ef" * 32, "0f" * 16
    assert not store.store_scan(resigned).inserted
    assert {r[1] for r in elf_rows()} == {"/usr/bin/new"}
