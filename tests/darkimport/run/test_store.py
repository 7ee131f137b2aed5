"""The database writer: one transaction per package, idempotent, race-safe."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from darkimport.run import store
from darkimport.run.records import ElfRecord, PackageMeta, PackageScan, Provenance
from darkserver.lookup.models import Build, ElfFile, Package, path_key

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


def test_store_writes_every_row_with_its_path_key() -> None:
    scan = make_scan()
    result = store.store_scan(scan, Provenance(instance="primary", koji_build_id=42))
    assert result.inserted and result.rows == 3
    build = Build.objects.get()
    assert (build.instance, build.koji_build_id, build.distro) == ("primary", 42, "fc40")
    package = Package.objects.get()
    assert (package.elf_files, package.without_build_id) == (4, 1)
    stored = {(bytes(r.build_id), r.path, bytes(r.path_key)) for r in ElfFile.objects.all()}
    assert stored == {(e.build_id, e.path, path_key(e.path)) for e in scan.elves}


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
    real = ElfFile.objects.bulk_create

    def failing_bulk_create(objs, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise DatabaseError("disk full (injected)")
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(ElfFile.objects, "bulk_create", failing_bulk_create)
    with pytest.raises(DatabaseError):
        store.store_scan(scan)
    assert calls["n"] == 2
    assert (Build.objects.count(), Package.objects.count(), ElfFile.objects.count()) == (0, 0, 0)


def test_losing_a_race_to_another_importer_is_not_an_error(monkeypatch) -> None:
    store.store_scan(make_scan())
    # The other importer committed between our existence check and our insert.
    answers = iter([False, True])
    monkeypatch.setattr(store, "package_exists", lambda nvra: next(answers))
    result = store.store_scan(make_scan())
    assert not result.inserted
    assert Package.objects.count() == 1 and ElfFile.objects.count() == 3


def test_duplicate_paths_in_a_scan_give_one_row() -> None:
    scan = make_scan(files=2)
    scan.elves.append(scan.elves[0])
    assert store.store_scan(scan).rows == 2
