"""Real repositories made in the test run and served over real local HTTP.

dnf/yum: ``createrepo_c`` over the sample rpms (rpmbuild); Debian: ``apt-ftparchive`` over the
sample debs (dpkg-deb), with a Release file listing the Packages indexes' hashes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def make_rpm_repo(root: Path, rpms: list[Path], compression: str = "gz") -> Path:
    """createrepo_c's repository; ``zstd``: its primary.xml recompressed by the real zstd
    and repomd.xml pointed at it (createrepo_c 0.17 here cannot write zstd; Fedora's can)."""
    (root / "Packages").mkdir(parents=True, exist_ok=True)
    for rpm in rpms:
        shutil.copy2(rpm, root / "Packages" / rpm.name)
    made = "gz" if compression == "zstd" else compression
    subprocess.run(["createrepo_c", "-q", "--general-compress-type", made, str(root)],
                   check=True)
    if compression == "zstd":
        repomd = root / "repodata" / "repomd.xml"
        text = repomd.read_text()
        href = re.search(r'href="(repodata/([0-9a-f]+)-primary\.xml\.gz)"', text)
        assert href is not None
        gz = root / href.group(1)
        xml = subprocess.run(["gzip", "-dc", str(gz)], check=True, capture_output=True).stdout
        zst = subprocess.run(["zstd", "-q", "-c"], input=xml, check=True,
                             capture_output=True).stdout
        digest = hashlib.sha256(zst).hexdigest()
        (root / "repodata" / f"{digest}-primary.xml.zst").write_bytes(zst)
        gz.unlink()
        text = text.replace(href.group(1), f"repodata/{digest}-primary.xml.zst")
        text = text.replace(f">{href.group(2)}<", f">{digest}<")
        repomd.write_text(text)
    return root


def make_deb_archive(root: Path, debs: list[Path], suite: str = "test",
                     packages: tuple[str, ...] = ("xz",)) -> Path:
    """pool/main/*.deb, dists/SUITE/main/binary-amd64/Packages[.xz|.gz], dists/SUITE/Release."""
    pool = root / "pool" / "main"
    pool.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        shutil.copy2(deb, pool / deb.name)
    index_dir = root / "dists" / suite / "main" / "binary-amd64"
    index_dir.mkdir(parents=True, exist_ok=True)
    text = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=root, check=True,
                          capture_output=True).stdout
    plain = index_dir / "Packages"
    plain.write_bytes(text)
    for kind in packages:
        tool = {"xz": "xz", "gz": "gzip"}[kind]
        subprocess.run([tool, "-k", "-f", str(plain)], check=True)
    if "plain" not in packages:
        plain.unlink()
    release = subprocess.run(
        ["apt-ftparchive", "-o", f"APT::FTPArchive::Release::Suite={suite}",
         "-o", "APT::FTPArchive::Release::Components=main",
         "-o", "APT::FTPArchive::Release::Architectures=amd64", "release", f"dists/{suite}"],
        cwd=root, check=True, capture_output=True).stdout
    (root / "dists" / suite / "Release").write_bytes(release)
    return root


@dataclass
class Served:
    url: str
    root: Path
    requests: list[str] = field(default_factory=list)
    delay: dict[str, float] = field(default_factory=dict)  # suffix -> seconds per GET
    cut_once: set[str] = field(default_factory=set)  # names whose next GET breaks off midway

    def got(self, suffix: str) -> list[str]:
        return [p for p in self.requests if p.endswith(suffix)]


@contextlib.contextmanager
def serve(root: Path) -> Iterator[Served]:
    """http.server on port 0 in a thread; records every request path."""
    served = Served("", root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            for suffix, seconds in served.delay.items():
                if self.path.endswith(suffix):
                    time.sleep(seconds)
            name = self.path.rsplit("/", 1)[-1]
            if name in served.cut_once:
                served.cut_once.discard(name)
                data = Path(self.translate_path(self.path)).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def rpms(sample_set) -> list[Path]:
    return sorted(p for p in sample_set.packages if p.suffix == ".rpm")


@pytest.fixture
def debs(sample_set) -> list[Path]:
    return sorted(p for p in sample_set.packages if p.suffix == ".deb")
