"""Importing Koji builds into the database: the real koji library against the test hub over
HTTP, rpms built with rpmbuild, rows compared with bsdtar + readelf (tests/oracle.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from darkimport.koji import buildimport as kojiimport
from darkimport.koji.conf import KojiInstance
from darkimport.koji.source import KojiSource, RetryPolicy
from darkimport.run.records import ElfRecord, PackageScan
from darkimport.run.scan import ScanOptions
from darkserver.lookup import paths
from darkserver.lookup.models import Build, ElfFile, Package
from tests.helpers import BIN, elf_rows, run_cmd
from tests.kojihub import KojiHub, cached_rpms
from tests.oracle import expected_rows

pytestmark = pytest.mark.django_db(transaction=True)
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, timeout=10)
OPTIONS = ScanOptions(url_templates={"rpm": "https://template.example/{filename}"})


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[KojiHub]:
    hub = KojiHub(tmp_path / "koji")
    hub.add_build(cached_rpms("demo"))
    hub.add_build(cached_rpms("noid", nobuildid=True))
    hub.add_build(cached_rpms("plain", build_id_links="none"))
    hub.add_build(cached_rpms("building"), state="BUILDING")
    with hub.serve():
        yield hub


def source(hub: KojiHub) -> KojiSource:
    return KojiSource(KojiInstance("test", hub.hub_url, hub.topurl), FAST)


def db_rows() -> set[tuple[str, str, str]]:
    return elf_rows()


def oracle(rpms: list[Path]) -> set[tuple[str, str, str]]:
    return {(r.build_id, r.path, r.nvra) for rpm in rpms for r in expected_rows(rpm)}


def test_a_build_is_imported_verified_with_its_koji_provenance(hub: KojiHub) -> None:
    outcome = kojiimport.import_build(source(hub), "demo-1.0-1.fc40", OPTIONS)
    assert outcome.ok and [r.status for r in outcome.rpms] == ["imported"] * 3
    assert db_rows() == oracle(cached_rpms("demo"))
    build = Build.objects.get()
    assert (build.instance, build.koji_build_id, build.name, build.version, build.release,
            build.distro) == ("test", outcome.build_id, "demo", "1.0", "1.fc40", "fc40")
    for package in Package.objects.all():
        info = hub.getRPM(package.nvra)
        assert info is not None
        assert package.koji_rpm_id == info["id"]
        assert package.sigmd5 == info["payloadhash"]
        assert package.url == f"{hub.topurl}/packages/demo/1.0/1.fc40/x86_64/{package.filename}"
    again = kojiimport.import_build(source(hub), outcome.build_id, OPTIONS)
    assert [r.status for r in again.rpms] == ["present"] * 3
    assert ElfFile.objects.count() == len(oracle(cached_rpms("demo")))


def test_an_rpm_that_fails_leaves_no_rows_and_the_others_go_in(hub: KojiHub) -> None:
    build = hub.getBuild("demo-1.0-1.fc40")
    assert build is not None
    libs = next(r for r in hub.listBuildRPMs(build["id"]) if r["name"] == "demo-libs")
    good = hub.rpm_files[libs["id"]].read_bytes()
    hub.corrupt(libs["id"])
    outcome = kojiimport.import_build(source(hub), build["id"], OPTIONS)
    assert [(r.nvra, r.status) for r in outcome.failed] == [("demo-libs-1.0-1.fc40.x86_64",
                                                             "failed")]
    assert "does not match Koji's payloadhash" in outcome.reason()
    rpms = cached_rpms("demo")
    assert db_rows() == oracle([p for p in rpms if not p.name.startswith("demo-libs")])
    hub.rpm_files[libs["id"]].write_bytes(good)  # fixed upstream: the retry completes the build
    again = kojiimport.import_build(source(hub), build["id"], OPTIONS)
    assert sorted(r.status for r in again.rpms) == ["imported", "present", "present"]
    assert db_rows() == oracle(rpms)


def test_unfinished_builds_are_skipped_with_a_message(hub: KojiHub) -> None:
    outcome = kojiimport.import_build(source(hub), "building-1.0-1.fc40", OPTIONS)
    assert outcome.skipped == "building-1.0-1.fc40: state BUILDING, only COMPLETE builds " \
                              "are imported"
    assert outcome.rpms == [] and Package.objects.count() == 0


def test_a_draft_build_is_skipped_until_promoted(hub: KojiHub) -> None:
    build = next(b for b in hub.builds.values() if b["nvr"] == "demo-1.0-1.fc40")
    build["draft"] = True
    outcome = kojiimport.import_build(source(hub), "demo-1.0-1.fc40", OPTIONS)
    assert outcome.skipped == "demo-1.0-1.fc40: draft build, imported once promoted"
    assert outcome.rpms == [] and Package.objects.count() == 0
    build["draft"] = False  # promoted: the same build id, now a regular build
    outcome = kojiimport.import_build(source(hub), build["id"], OPTIONS)
    assert outcome.ok and [r.status for r in outcome.rpms] == ["imported"] * 3
    assert db_rows() == oracle(cached_rpms("demo"))


def snapshot() -> dict[str, object]:
    return {
        "builds": sorted(Build.objects.values_list(
            "instance", "koji_build_id", "name", "epoch", "version", "release", "distro")),
        "packages": sorted(Package.objects.values_list(
            "nvra", "kind", "name", "epoch", "version", "release", "arch", "filename", "size",
            "sigmd5", "url", "koji_rpm_id", "elf_files", "without_build_id")),
        "elves": sorted(
            (n, bytes(b).hex(), paths.expand(p, bytes(b)), t, m, d, note)
            for n, b, p, t, m, d, note in ElfFile.objects.values_list(
                "package__nvra", "build_id", "path__path", "elf_type", "machine", "debug",
                "package_note")),
    }


def test_header_first_and_payload_import_give_identical_rows(hub: KojiHub) -> None:
    refs = ["demo-1.0-1.fc40", "plain-1.0-1.fc40", "noid-1.0-1.fc40"]
    methods = {}
    for ref in refs:
        outcome = kojiimport.import_build(source(hub), ref, OPTIONS, mode="header")
        assert outcome.ok, outcome.reason()
        methods.update({r.nvra: r.method for r in outcome.rpms})
    # Only the rpm whose header cannot account for an ELF file (no build-id) was downloaded.
    assert {n for n, m in methods.items() if m == "payload"} == {"noid-1.0-1.fc40.x86_64"}
    assert hub.requests == [hub.url_path(hub.getRPM("noid-1.0-1.fc40.x86_64")["id"])]  # type: ignore[index]
    header = snapshot()
    assert set(Package.objects.filter(sha256="").values_list("nvra", flat=True)) == {
        n for n, m in methods.items() if m == "header"}
    Build.objects.all().delete()
    for ref in refs:
        outcome = kojiimport.import_build(source(hub), ref, OPTIONS, mode="payload")
        assert outcome.ok and {r.method for r in outcome.rpms} == {"payload"}
    payload = snapshot()
    assert header == payload
    assert len(payload["elves"]) == len(  # type: ignore[arg-type]
        oracle([p for name in ("demo", "plain", "noid") for p in cached_rpms(
            name, **({"nobuildid": True} if name == "noid" else
                     {"build_id_links": "none"} if name == "plain" else {}))]))


def test_verify_reports_where_header_and_payload_disagree(hub: KojiHub) -> None:
    outcome = kojiimport.import_build(source(hub), "demo-1.0-1.fc40", OPTIONS, mode="verify")
    assert outcome.ok and all(r.method == "payload" and r.warnings == [] for r in outcome.rpms)
    meta = kojiimport.meta_from_koji({"name": "x"}, {"name": "x", "version": "1",
                                                      "release": "1.fc40", "arch": "x86_64"}, "")
    a = PackageScan(meta, [ElfRecord(b"\x01" * 20, "/usr/bin/x", 3, 62, 64, False, False)],
                    elf_files=1)
    b = PackageScan(meta, [ElfRecord(b"\x01" * 20, "/usr/bin/x", 2, 62, 64, False, False)],
                    elf_files=2)
    row = f"'{'01' * 20}', '/usr/bin/x'"
    assert kojiimport.compare(a, b) == [
        f"x-1-1.fc40.x86_64: header-first only: ({row}, 3, 62, 64, False, False)",
        f"x-1-1.fc40.x86_64: payload only: ({row}, 2, 62, 64, False, False)",
        "x-1-1.fc40.x86_64: ELF files: header 1, payload 2",
    ]


def test_the_koji_command(hub: KojiHub, tmp_path: Path) -> None:
    env = {"DARKSERVER_DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3"}
    cmd = [str(BIN / "darkserver-import"), "koji", "--hub", hub.hub_url, "--topurl", hub.topurl,
           "--instance", "lab"]
    ok = run_cmd(cmd + ["--json", "demo-1.0-1.fc40", "building-1.0-1.fc40"], env=env)
    report = json.loads(ok.stdout)
    assert (report["instance"], report["builds"], report["skipped"], report["rpms"],
            report["failed"]) == ("lab", 2, 1, 3, 0)
    assert report["rows"] == len(oracle(cached_rpms("demo")))
    nosuch = run_cmd(cmd + ["nosuch-1-1.fc40"], env=env, check=False)
    assert nosuch.returncode == 1
    assert "FAILED nosuch-1-1.fc40: lab: no build 'nosuch-1-1.fc40'" in nosuch.stderr
    # A hub by URL is never filed under 'primary': without --instance it must be configured.
    unnamed = [str(BIN / "darkserver-import"), "koji", "--hub", hub.hub_url, "--topurl",
               hub.topurl, "demo-1.0-1.fc40"]
    refused = run_cmd(unnamed, env=env | {"DARKSERVER_KOJI_CONF": str(tmp_path / "none.conf")},
                      check=False)
    assert refused.returncode == 2
    assert "is not in the Koji instances configuration: name it with --instance" in refused.stderr
    conf = tmp_path / "koji-instances.conf"
    conf.write_text(f"[primary]\nhub = https://koji.fedoraproject.org/kojihub\n"
                    f"topurl = https://kojipkgs.fedoraproject.org\n"
                    f"[mylab]\nhub = {hub.hub_url}/\ntopurl = {hub.topurl}\n")
    found = run_cmd(unnamed + ["--json"], env=env | {"DARKSERVER_KOJI_CONF": str(conf)})
    assert json.loads(found.stdout)["instance"] == "mylab"
