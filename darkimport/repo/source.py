"""Where a repository's files come from: an HTTP(S) base URL (requests) or a local directory.

Index files are small enough to hold (Debian bookworm main amd64's Packages.xz is ~9 MB) and
are read whole, with retries; package files are only ever opened as streams, so a package
goes from the socket through the readers without being stored.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import quote, urljoin

import requests

from darkimport.repo.entries import RepoError

# Network errors worth another try; anything else (404, a bad file) is not.
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
             requests.exceptions.ContentDecodingError)

_session: tuple[int, requests.Session] | None = None


def session() -> requests.Session:
    """One session (connection pool) per process: forked workers must not share sockets."""
    global _session
    if _session is None or _session[0] != os.getpid():
        s = requests.Session()
        s.headers["User-Agent"] = "darkserver-import"
        _session = (os.getpid(), s)
    return _session[1]


class RepoSource:
    """The root of a repository: ``https://host/fedora/updates/40/x86_64/`` or a directory."""

    def __init__(self, base: str, timeout: float = 60.0, retries: int = 3) -> None:
        self.local = "://" not in base
        if self.local:
            self.root = Path(base.removeprefix("file://") if base.startswith("file://") else base)
            if not self.root.is_dir():
                raise RepoError(f"{base}: not a directory")
            self.base = str(self.root.resolve())
        else:
            if not base.startswith(("http://", "https://")):
                raise RepoError(f"{base}: only http://, https:// and local paths are supported")
            self.base = base if base.endswith("/") else base + "/"
        self.timeout = timeout
        self.retries = max(1, retries)

    def url(self, location: str) -> str:
        if self.local:
            return str(Path(self.base) / location)
        return urljoin(self.base, quote(location, safe="/~+:@"))

    def read_bytes(self, location: str) -> bytes:
        """A whole (index) file; RepoError when it cannot be had."""
        if self.local:
            try:
                return (Path(self.base) / location).read_bytes()
            except OSError as exc:
                raise RepoError(f"{self.url(location)}: {exc.strerror or exc}") from exc
        for attempt in range(self.retries):
            try:
                response = session().get(self.url(location), timeout=self.timeout)
                if response.status_code == 404:
                    raise RepoError(f"{self.url(location)}: not found (404)")
                response.raise_for_status()
                return response.content
            except TRANSIENT as exc:
                if attempt + 1 == self.retries:
                    raise RepoError(f"{self.url(location)}: {exc}") from exc
                time.sleep(min(2**attempt, 10))
            except requests.RequestException as exc:
                raise RepoError(f"{self.url(location)}: {exc}") from exc
        raise AssertionError("unreachable")

    def exists(self, location: str) -> bool:
        if self.local:
            return (Path(self.base) / location).is_file()
        try:
            response = session().head(self.url(location), timeout=self.timeout,
                                      allow_redirects=True)
        except requests.RequestException:
            return False
        return response.status_code == 200

    @contextlib.contextmanager
    def open_stream(self, location: str) -> Iterator[BinaryIO]:
        """A package file as a stream of its bytes as stored (no transfer decoding)."""
        if self.local:
            with open(Path(self.base) / location, "rb", buffering=0) as f:
                yield cast(BinaryIO, f)
            return
        with session().get(self.url(location), stream=True, timeout=self.timeout) as response:
            response.raise_for_status()
            raw = response.raw
            raw.decode_content = False  # the checksum is over the file, not a gzip transfer
            yield cast(BinaryIO, raw)
