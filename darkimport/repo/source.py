"""Where a repository's files come from: an HTTP(S) base URL or a local directory.

Index files are small enough to hold (Debian bookworm main amd64's Packages.xz is ~9 MB) and
are read whole, with retries; package files are only ever opened as streams, so a package
goes from the socket through the readers without being stored.

Index files are fetched with the standard library (urllib; Django has loaded http.client
already), package files with requests (a connection pool per worker). Every run reads the
index, also a re-run that downloads nothing, where importing requests was ~0.08 of its ~0.5
CPU-s (docs/BENCHMARKS.md); it is imported only when a package is downloaded. Both trust the
same certificates: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's bundle (requests'
own rule).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast
from urllib.parse import quote, urljoin

from darkimport.repo.entries import RepoError

if TYPE_CHECKING:
    import requests

USER_AGENT = "darkserver-import"
# Network errors worth another try (a refused or dropped connection, a timeout, a response cut
# short); an HTTP error status (404, a bad file) is not.
_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, OSError)

_session: tuple[int, requests.Session] | None = None


def session() -> requests.Session:
    """One session (connection pool) per process: forked workers must not share sockets."""
    global _session
    if _session is None or _session[0] != os.getpid():
        import requests

        s = requests.Session()
        s.headers["User-Agent"] = USER_AGENT
        _session = (os.getpid(), s)
    return _session[1]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        import certifi

        bundle = certifi.where()
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


class _HTTPS(urllib.request.HTTPSHandler):
    """Loads the certificates on the first https connection (~0.035 CPU-s), also one that an
    http mirror redirects to, and never for plain http."""

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(http.client.HTTPSConnection, req, context=_tls_context())


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_HTTPS())


def _urlopen(url: str, timeout: float, method: str = "GET") -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT}, method=method)
    response: http.client.HTTPResponse = _opener().open(request, timeout=timeout)
    return response


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
        url = self.url(location)
        for attempt in range(self.retries):
            try:
                with _urlopen(url, self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise RepoError(f"{url}: not found (404)") from exc
                raise RepoError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            except _TRANSIENT as exc:
                if attempt + 1 == self.retries:
                    raise RepoError(f"{url}: {exc}") from exc
                time.sleep(min(2**attempt, 10))
        raise AssertionError("unreachable")

    def exists(self, location: str) -> bool:
        if self.local:
            return (Path(self.base) / location).is_file()
        try:
            with _urlopen(self.url(location), self.timeout, method="HEAD") as response:
                return response.status == 200
        except _TRANSIENT:  # HTTPError (404 and the like) included
            return False

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
