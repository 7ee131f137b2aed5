"""Fetch a package from a URL that answered, and verify it against the server's metadata.

Size and SHA-256 come from the match's ``package`` object. A download goes to a temporary file
beside its destination and is renamed only once it verified, so a partial or corrupt download
never looks like a package. The file name is the server's ``filename`` only when it is a
plain name (no directory part, no leading dot); nothing else from the server names a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any

import requests

from darkclient.errors import DownloadError
from darkclient.httpsession import EnvOnceSession

CHUNK = 1 << 20
# Packages spill from memory to a temporary file above this size.
SPOOL_BYTES = 64 * 1024 * 1024
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+~^][A-Za-z0-9._+~^:-]*")


def safe_filename(package: dict[str, Any]) -> str:
    name = str(package.get("filename") or "")
    if not _SAFE_NAME.fullmatch(name) or ".." in name or len(name) > 255:
        raise DownloadError(f"refusing package file name {name!r} from the server")
    return name


def _stream_to(session: requests.Session, url: str, out: IO[bytes], package: dict[str, Any],
               timeout: float, connect: float | None = None) -> None:
    expected_size = int(package.get("size") or 0)
    expected_sha = str(package.get("sha256") or "").lower()
    digest = hashlib.sha256()
    got = 0
    try:
        if isinstance(session, EnvOnceSession):
            opened = session.download(url, timeout, connect or timeout)
        else:
            opened = session.get(url, stream=True, timeout=(connect or timeout, timeout))
        with opened as resp:
            if resp.status_code != 200:
                raise DownloadError(f"{url}: HTTP {resp.status_code}")
            for chunk in resp.iter_content(CHUNK):
                got += len(chunk)
                if expected_size and got > expected_size:
                    raise DownloadError(f"{url}: larger than the {expected_size} bytes expected")
                digest.update(chunk)
                out.write(chunk)
    except requests.exceptions.Timeout:
        raise DownloadError(f"{url}: no data for {timeout:g} s") from None
    except requests.exceptions.RequestException as exc:
        raise DownloadError(f"{url}: download failed ({type(exc).__name__})") from None
    if expected_size and got != expected_size:
        raise DownloadError(f"{url}: got {got} bytes, expected {expected_size} (truncated?)")
    if expected_sha and digest.hexdigest() != expected_sha:
        raise DownloadError(f"{url}: SHA-256 mismatch (expected {expected_sha}, "
                            f"got {digest.hexdigest()})")
    out.flush()


def download_to_dir(session: requests.Session, url: str, package: dict[str, Any],
                    directory: Path, timeout: float) -> Path:
    """Download into ``directory``/filename (verified); reuses a file that already verifies."""
    name = safe_filename(package)
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / name
    if dest.is_file() and _matches(dest, package):
        return dest
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".darkclient-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            _stream_to(session, url, out, package, timeout)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def download_spooled(session: requests.Session, url: str, package: dict[str, Any],
                     timeout: float, connect: float | None = None) -> IO[bytes]:
    """Download into memory (spilling to an anonymous temporary file when large); ``connect``
    bounds the wait for a connection when it differs from the wait for data."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
    try:
        _stream_to(session, url, out, package, timeout, connect)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _matches(path: Path, package: dict[str, Any]) -> bool:
    size = int(package.get("size") or 0)
    sha = str(package.get("sha256") or "").lower()
    if not sha or (size and path.stat().st_size != size):
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest() == sha
