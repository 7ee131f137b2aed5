"""The index readers on their own: what they accept, what they refuse."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from darkimport.repo import debian, rpmmd, source
from darkimport.repo.entries import RepoError
from darkimport.repo.fetch import FetchJob, fetch_and_scan
from darkimport.repo.source import RepoSource
from darkimport.run.scan import ScanOptions
from tests.darkimport.repo.conftest import make_deb_archive, make_rpm_repo, serve
from tests.oracle import package_nvra

PRIMARY = b"""<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" packages="2">
<package type="rpm"><name>a</name><arch>x86_64</arch><version epoch="0" ver="1" rel="2"/>
<checksum type="sha256" pkgid="YES">AB</checksum><size package="10"/>
<location href="%s"/></package>
<package type="rpm"><name>a</name><arch>src</arch><version epoch="0" ver="1" rel="2"/>
<checksum type="sha256" pkgid="YES">cd</checksum><location href="a.src.rpm"/></package>
</metadata>"""


def test_primary_entries_and_hostile_locations() -> None:
    (entry,) = rpmmd.parse_primary(io.BytesIO(PRIMARY % b"Packages/a-1-2.x86_64.rpm"))
    assert (entry.nvra, entry.checksum, entry.size, entry.filename) == (
        "a-1-2.x86_64", "ab", 10, "a-1-2.x86_64.rpm")
    for bad in (b"../../etc/passwd", b"/etc/passwd"):
        with pytest.raises(RepoError, match="outside the repository"):
            list(rpmmd.parse_primary(io.BytesIO(PRIMARY % bad)))
    with pytest.raises(RepoError, match="unreadable"):
        list(rpmmd.parse_primary(io.BytesIO(b"<metadata><package")))


def test_rpm_index_entries_match_the_packages(rpms, tmp_path) -> None:
    repo = make_rpm_repo(tmp_path / "repo", rpms, "xz")
    entries = list(rpmmd.entries(RepoSource(str(repo))))
    assert sorted(e.nvra for e in entries) == sorted(package_nvra(p) for p in rpms)
    # repomd.xml's checksum of primary is checked before it is parsed.
    repomd = repo / "repodata" / "repomd.xml"
    href = rpmmd.primary_location(repomd.read_bytes())[0]
    (repo / href).write_bytes((repo / href).read_bytes()[:-1] + b"\0")
    with pytest.raises(RepoError, match="does not match repomd.xml"):
        list(rpmmd.entries(RepoSource(str(repo))))


def test_inrelease_armour_and_stanzas_without_checksums(debs, tmp_path) -> None:
    archive = make_deb_archive(tmp_path / "debian", debs)
    release = archive / "dists/test/Release"
    body = release.read_text()
    signed = ("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + body +
              "-----BEGIN PGP SIGNATURE-----\n\nxyz\n-----END PGP SIGNATURE-----\n")
    release.unlink()
    (archive / "dists/test/InRelease").write_text(signed)
    entries = list(debian.entries(RepoSource(str(archive)), "test"))
    assert sorted(e.nvra for e in entries) == sorted(package_nvra(d) for d in debs)
    with pytest.raises(RepoError, match="has no 'SHA256'"):
        list(debian.parse_packages(io.BytesIO(
            b"Package: x\nVersion: 1\nArchitecture: amd64\nFilename: pool/x.deb\nSize: 1\n")))


def test_download_broken_off_midway_is_retried(rpms, tmp_path) -> None:
    repo = make_rpm_repo(tmp_path / "repo", rpms)
    entry = next(e for e in rpmmd.entries(RepoSource(str(repo))) if e.size > 4096)
    with serve(repo) as http:
        http.cut_once.add(entry.filename)
        outcome = fetch_and_scan(FetchJob(http.url, entry, ScanOptions(), retries=2))
        assert outcome.error == "" and outcome.scan is not None
        assert outcome.scan.meta.sha256 == entry.checksum
        assert len(http.got(entry.filename)) == 2
        http.cut_once.add(entry.filename)
        once = fetch_and_scan(FetchJob(http.url, entry, ScanOptions(), retries=1))
        assert once.scan is None and "download failed" in once.error
        gone = dataclasses.replace(entry, location="Packages/nosuch.rpm")
        missing = fetch_and_scan(FetchJob(http.url, gone, ScanOptions()))
        assert missing.error == "download failed: HTTP 404"


def test_local_source_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="not a directory"):
        RepoSource(str(tmp_path / "absent"))
    with pytest.raises(RepoError, match="only http"):
        RepoSource("ftp://mirror.example/debian")


def test_index_read_over_http_retries_a_cut_response_and_names_a_404(rpms, tmp_path) -> None:
    repo = make_rpm_repo(tmp_path / "repo", rpms)
    whole = (repo / "repodata" / "repomd.xml").read_bytes()
    with serve(repo) as http:
        source = RepoSource(http.url, retries=2)
        http.cut_once.add("repomd.xml")
        assert source.read_bytes("repodata/repomd.xml") == whole
        assert len(http.got("repomd.xml")) == 2
        http.cut_once.add("repomd.xml")
        with pytest.raises(RepoError, match="repomd.xml"):
            RepoSource(http.url, retries=1).read_bytes("repodata/repomd.xml")
        with pytest.raises(RepoError, match=r"not found \(404\)"):
            source.read_bytes("repodata/nosuch.xml")
        assert source.exists("repodata/repomd.xml")
        assert not source.exists("repodata/nosuch.xml")


def test_a_rerun_that_finds_nothing_new_does_not_import_the_readers(tmp_path) -> None:
    """The fixed cost of a re-run (docs/BENCHMARKS.md): reading the index and the database
    must not pull in requests or the package readers, which only a download needs."""
    code = ("import sys, darkimport.cli, darkimport.repo.cli, darkimport.repo.run; "
            "print(sorted(m for m in ('requests', 'darkimport.run.scan', 'darkcore.rpm') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=tmp_path)
    assert done.stdout.strip() == "[]"


def test_index_over_https_trusts_requests_ca_bundle(tmp_path, monkeypatch) -> None:
    """urllib for the index trusts what requests trusts for the packages: REQUESTS_CA_BUNDLE,
    else certifi's bundle (which does not know a certificate made here)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "repomd.xml").write_bytes(b"<repomd/>")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler,
                                            directory=str(tmp_path / "www")))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/"
    try:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        source._tls_context.cache_clear()
        with pytest.raises(RepoError, match="CERTIFICATE_VERIFY_FAILED"):
            RepoSource(url, retries=1).read_bytes("repomd.xml")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        source._tls_context.cache_clear()
        assert RepoSource(url, retries=1).read_bytes("repomd.xml") == b"<repomd/>"
    finally:
        source._tls_context.cache_clear()
        server.shutdown()
        server.server_close()
