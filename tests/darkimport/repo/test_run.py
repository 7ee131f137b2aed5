"""Whole repositories from their indexes, over real HTTP, compared with the real tools."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from darkimport.repo.entries import RepoError
from darkimport.repo.run import run_repo
from darkserver.lookup.models import ImportRun, Package
from tests.darkimport.repo.conftest import make_deb_archive, make_rpm_repo, serve
from tests.helpers import BIN, elf_rows, run_cmd
from tests.oracle import package_nvra

pytestmark = pytest.mark.django_db(transaction=True)


def db_rows(nvras: set[str] | None = None) -> set[tuple[str, str, str]]:
    return {r for r in elf_rows() if nvras is None or r[2] in nvras}


def expected(sample_set, packages: list[Path]) -> set[tuple[str, str, str]]:
    nvras = {package_nvra(p) for p in packages}
    return {(r.build_id, r.path, r.nvra) for r in sample_set.expected if r.nvra in nvras}


@pytest.mark.parametrize("compression", ["gz", "xz", "zstd"])
def test_rpm_repository_then_nothing_downloaded_again(sample_set, rpms, tmp_path,
                                                      compression) -> None:
    repo = make_rpm_repo(tmp_path / "repo", rpms, compression)
    with serve(repo) as http:
        first = run_repo(http.url + "/", jobs=2)
        assert (first.listed, first.new, first.known, first.failed) == (len(rpms), len(rpms), 0, 0)
        assert len(http.got(".rpm")) == len(rpms)
        assert first.bytes == sum(p.stat().st_size for p in rpms)
        assert db_rows() == expected(sample_set, rpms)
        # Every package row points at the file it came from, and carries its identity.
        for package in Package.objects.all():
            assert package.url == f"{http.url}/Packages/{package.filename}"
            assert package.size == (repo / "Packages" / package.filename).stat().st_size
        del http.requests[:]
        second = run_repo(http.url, jobs=2)
        assert (second.new, second.known, second.bytes) == (0, len(rpms), 0)
        assert http.got(".rpm") == []  # known by the index's checksums alone
    runs = ImportRun.objects.order_by("id")
    assert [(r.kind, r.new, r.known, r.status) for r in runs] == [
        ("rpm-md", len(rpms), 0, "done"), ("rpm-md", 0, len(rpms), "done")]


def test_debian_archive_with_dbgsym_rows_from_the_index(sample_set, debs, tmp_path) -> None:
    archive = make_deb_archive(tmp_path / "debian", debs)
    dbgsym = next(d for d in debs if "-dbgsym" in d.name)
    with serve(archive) as http:
        summary = run_repo(http.url, suite="test", jobs=2)
        assert summary.failed == 0, summary.failures
        assert (summary.new, summary.from_index) == (len(debs), 1)
        # The dbgsym package was never downloaded: its rows come from Build-Ids.
        assert http.got(dbgsym.name) == []
        assert len(http.got(".deb")) == len(debs) - 1
        others = [d for d in debs if d != dbgsym]
        assert db_rows({package_nvra(d) for d in others}) == expected(sample_set, others)
        nvra = package_nvra(dbgsym)
        from_index = db_rows({nvra})
        stored = Package.objects.get(nvra=nvra)
        assert stored.sha256 and stored.size == dbgsym.stat().st_size
        # The same package downloaded and read: the index gave the same ids at the same paths;
        # only the dwz multifile (no Build-Ids entry) is beyond the index.
        Package.objects.filter(nvra=nvra).delete()
        read = run_repo(http.url, suite="test", jobs=1, download_dbgsym=True)
        assert (read.new, read.from_index, read.known) == (1, 0, len(debs) - 1)
        assert len(http.got(dbgsym.name)) == 1
    downloaded = db_rows({nvra})
    truth = expected(sample_set, [dbgsym])
    assert downloaded == truth
    assert from_index == {r for r in truth if not r[1].startswith("/usr/lib/debug/.dwz/")}
    assert from_index and from_index != truth


def test_package_that_does_not_match_the_index_is_rejected(sample_set, rpms, tmp_path) -> None:
    repo = make_rpm_repo(tmp_path / "repo", rpms)
    # A valid rpm, but not the one the index promises under that name.
    victim, impostor = rpms[0], rpms[1]
    shutil.copy(impostor, repo / "Packages" / victim.name)
    with serve(repo) as http:
        summary = run_repo(http.url, jobs=2)
    assert summary.failed == 1 and summary.new == len(rpms) - 1
    (name, reason), = summary.failures
    assert name.endswith(victim.name) and "does not match the index" in reason
    assert not Package.objects.filter(nvra=package_nvra(victim)).exists()
    assert not Package.objects.filter(filename=victim.name).exists()
    assert ImportRun.objects.get().status == "failed"


def test_index_that_does_not_match_its_release_is_refused(debs, tmp_path) -> None:
    archive = make_deb_archive(tmp_path / "debian", debs)
    index = archive / "dists/test/main/binary-amd64/Packages.xz"
    data = bytearray(index.read_bytes())
    data[-20] ^= 1
    index.write_bytes(bytes(data))
    with pytest.raises(RepoError, match="does not match"):
        run_repo(str(archive), suite="test")
    assert not Package.objects.exists()
    assert ImportRun.objects.values_list("status", "new").get() == ("failed", 0)


def test_gz_only_archive_from_a_local_path_and_narrowing(sample_set, debs, tmp_path) -> None:
    archive = make_deb_archive(tmp_path / "debian", debs, packages=("gz",))
    with pytest.raises(RepoError, match="no architecture arm64"):
        run_repo(str(archive), suite="test", architectures=["arm64"])
    summary = run_repo(str(archive), suite="test", components=["main"],
                       architectures=["amd64"], jobs=1)
    assert (summary.new, summary.failed) == (len(debs), 0)
    with pytest.raises(RepoError, match="not found|No such file"):
        run_repo(str(archive), suite="nosuch")


def test_killed_run_resumes_where_it_stopped(sample_set, rpms, tmp_path) -> None:
    """A real importer process SIGKILLed mid-run; the next run downloads only the rest."""
    repo = make_rpm_repo(tmp_path / "repo", rpms)
    db = tmp_path / "resume.sqlite3"
    env = os.environ | {"DARKSERVER_DATABASE_URL": f"sqlite:///{db}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def committed() -> list[str]:
        if not db.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            try:
                return [r[0] for r in c.execute("SELECT filename FROM lookup_package")]
            except sqlite3.OperationalError:  # tables not made yet
                return []

    with serve(repo) as http:
        http.delay[".rpm"] = 0.8
        proc = subprocess.Popen([str(BIN / "darkserver-import"), "repo", http.url, "-j", "1",
                                 "--json"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(committed()) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
        before = committed()
        assert 2 <= len(before) < len(rpms)
        http.delay.clear()
        del http.requests[:]
        resumed = run_cmd([str(BIN / "darkserver-import"), "repo", http.url, "-j", "2",
                           "--json"], env=env)
        summary = json.loads(resumed.stdout)
        assert (summary["known"], summary["new"], summary["failed"]) == (
            len(before), len(rpms) - len(before), 0)
        # Only what the killed run had not committed was downloaded.
        assert sorted(p.rsplit("/", 1)[1] for p in http.got(".rpm")) == sorted(
            p.name for p in rpms if p.name not in before)
    assert sorted(committed()) == sorted(p.name for p in rpms)
    history = json.loads(run_cmd([str(BIN / "darkserver-import"), "history", "--json"],
                                 env=env).stdout)
    assert [(h["status"], h["finished_at"] is None) for h in history] == [
        ("done", False), ("running", True)]  # newest first; the killed run never finished


def test_resigned_copies_of_known_rpms_are_not_downloaded(rpms, tmp_path) -> None:
    from darkimport.run.importrun import run_import
    from darkimport.run.scan import ScanOptions

    assert run_import(rpms, ScanOptions(), jobs=1).packages == len(rpms)
    repo = make_rpm_repo(tmp_path / "repo", rpms)
    for rpm in (repo / "Packages").iterdir():
        # Bytes outside SIGMD5 (the lead's name field), as a re-signed mirror copy differs.
        data = bytearray(rpm.read_bytes())
        data[75] = ord("x")
        rpm.write_bytes(bytes(data))
    subprocess.run(["createrepo_c", "-q", "--update", str(repo)], check=True)
    with serve(repo) as http:
        summary = run_repo(http.url, jobs=1)
        assert (summary.known, summary.new, summary.failed) == (len(rpms), 0, 0)
        assert http.got(".rpm") == []
        # --rescan downloads them: same payloads, so they stay as they are.
        rescan = run_repo(http.url, jobs=1, rescan=True)
        assert (rescan.new, rescan.known, rescan.failed) == (0, len(rpms), 0)
        assert len(http.got(".rpm")) == len(rpms)
