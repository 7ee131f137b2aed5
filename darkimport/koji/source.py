"""Ask a Koji hub about a build and fetch its rpms, verified.

The hub is spoken to with the real ``koji`` library (``ClientSession``, ``PathInfo``). Downloads
go through ``requests`` with retries and exponential backoff on network errors and 5xx answers,
and each file is checked against Koji's ``payloadhash``: the rpm's SIGMD5, the MD5 of the file
from the end of the (8-byte padded) signature header to EOF. It is the same for the signed and
unsigned copies, so both verify the same way. The hash is computed while the bytes arrive, by
darkcore.rpm.SigMD5 (the rule's one place; the reader checks the same digest when it scans).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

import koji
import requests

from darkcore.errors import PackageError
from darkcore.rpm import SigMD5
from darkimport.koji.conf import KojiInstance

log = logging.getLogger(__name__)

# Downloads larger than this spill from memory to an anonymous temporary file.
SPOOL_MAX = 64 * 1024 * 1024
CHUNK = 1024 * 1024

BuildInfo = dict[str, Any]
RpmInfo = dict[str, Any]


class KojiError(Exception):
    """The hub cannot give us this build (unreachable, unknown build)."""


class BuildNotFound(KojiError):
    """No such build on this hub (scratch builds are never in Koji's build table)."""


class BuildSkipped(KojiError):
    """A build we deliberately do not import (not COMPLETE, draft); the message says why."""


class DownloadError(PackageError):
    """An rpm could not be downloaded, even after retries."""


class VerificationError(PackageError):
    """The downloaded bytes are not what Koji recorded (SIGMD5 or size mismatch)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # tries per download / hub call, the first included
    backoff: float = 1.0  # seconds before the 2nd try; doubled each time
    max_backoff: float = 30.0
    timeout: float = 60.0  # seconds of silence before a connection is given up


def sigmd5_of(stream: IO[bytes]) -> str:
    digest = SigMD5()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def rpm_filename(rpm: RpmInfo) -> str:
    return "{name}-{version}-{release}.{arch}.rpm".format(**rpm)


def rpm_nvra(rpm: RpmInfo) -> str:
    return "{name}-{version}-{release}.{arch}".format(**rpm)


class KojiSource:
    """One Koji instance: build metadata from the hub, rpm files from its package tree."""

    def __init__(
        self,
        instance: KojiInstance,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.instance = instance
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        # anon_retry: Koji's own retry loop for read-only calls (network errors, 5xx from the
        # hub). Its first retry is immediate, the next ones wait retry_interval.
        opts: dict[str, Any] = {
            "anon_retry": True,
            "max_retries": max(0, self.retry.attempts - 1),
            "retry_interval": self.retry.backoff,
            "timeout": self.retry.timeout,
        }
        # The TLS options as koji's own client takes them from its config files.
        if instance.serverca:
            opts["serverca"] = instance.serverca
        if instance.no_ssl_verify:
            opts["no_ssl_verify"] = True
        if instance.cert:
            opts["cert"] = instance.cert
        self.session = koji.ClientSession(instance.hub, opts=opts)
        self.pathinfo = koji.PathInfo(topdir=instance.topurl)
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "darkserver-import"
        if instance.cert:
            self.http.cert = instance.cert

    def close(self) -> None:
        self.http.close()
        self.session.rsession.close()

    # -- hub ------------------------------------------------------------------------------

    def get_build(self, ref: int | str) -> BuildInfo:
        """The COMPLETE build ``ref`` (Koji build id or N-V-R); BuildNotFound / BuildSkipped."""
        key: int | str = int(ref) if isinstance(ref, int) or str(ref).isdigit() else str(ref)
        try:
            build: BuildInfo | None = self.session.getBuild(key)
        except (koji.GenericError, requests.RequestException) as exc:
            raise KojiError(f"{self.instance.name}: getBuild({key!r}) failed: {exc}") from exc
        if build is None:
            raise BuildNotFound(
                f"{self.instance.name}: no build {key!r} (scratch builds are not Koji builds "
                "and cannot be imported)"
            )
        state = build.get("state")
        if state != koji.BUILD_STATES["COMPLETE"]:
            name = koji.BUILD_STATES.get(state, str(state)) if state is not None else "unknown"
            raise BuildSkipped(f"{build['nvr']}: state {name}, only COMPLETE builds are imported")
        if build.get("draft"):
            raise BuildSkipped(f"{build['nvr']}: draft build, imported once promoted")
        return build

    def list_rpms(self, build: BuildInfo) -> list[RpmInfo]:
        """The build's binary rpms (source rpms carry no ELF files)."""
        try:
            rpms: list[RpmInfo] = self.session.listBuildRPMs(build["id"])
        except (koji.GenericError, requests.RequestException) as exc:
            raise KojiError(f"{build['nvr']}: listBuildRPMs failed: {exc}") from exc
        return sorted((r for r in rpms if r["arch"] not in ("src", "nosrc")),
                      key=lambda r: (r["arch"], r["name"]))

    def rpm_headers(self, rpm: RpmInfo, names: list[str]) -> dict[str, Any]:
        """Named header fields of an rpm from the hub, without downloading it."""
        try:
            result: dict[str, Any] = self.session.getRPMHeaders(rpmID=rpm["id"], headers=names)
        except (koji.GenericError, requests.RequestException) as exc:
            raise KojiError(f"{rpm_nvra(rpm)}: getRPMHeaders failed: {exc}") from exc
        return result

    def signed_keys(self, rpms: list[RpmInfo]) -> dict[int, str]:
        """For each rpm id, the first configured signing key Koji has a copy for."""
        if not self.instance.sigkeys or not rpms:
            return {}
        with self.session.multicall(strict=True) as calls:
            pending = [(r["id"], calls.queryRPMSigs(rpm_id=r["id"])) for r in rpms]
        chosen = {}
        for rpm_id, call in pending:
            have = {str(s["sigkey"]).lower() for s in call.result}
            for key in self.instance.sigkeys:
                if key in have:
                    chosen[rpm_id] = key
                    break
        return chosen

    # -- package tree ---------------------------------------------------------------------

    def rpm_url(self, build: BuildInfo, rpm: RpmInfo, sigkey: str | None = None) -> str:
        rel = self.pathinfo.signed(rpm, sigkey) if sigkey else self.pathinfo.rpm(rpm)
        return f"{self.pathinfo.build(build)}/{rel}"

    def fetch(self, build: BuildInfo, rpm: RpmInfo, sigkey: str | None = None
              ) -> tuple[BinaryIO, str]:
        """Download and verify one rpm; returns (file positioned at 0, the URL it came from).

        A signed copy that is gone (Koji prunes them) falls back to the unsigned one."""
        urls = [self.rpm_url(build, rpm, sigkey)] if sigkey else []
        urls.append(self.rpm_url(build, rpm))
        last: DownloadError | None = None
        for url in urls:
            try:
                return self.download(url, rpm), url
            except _NotThere as exc:
                last = DownloadError(f"{rpm_filename(rpm)}: {exc}")
        assert last is not None
        raise last

    def download(self, url: str, rpm: RpmInfo) -> BinaryIO:
        """``url`` into an anonymous spooled file, retried with backoff, verified against
        ``rpm['payloadhash']`` and ``rpm['size']``."""
        name = rpm_filename(rpm)
        reason = ""
        for attempt in range(self.retry.attempts):
            if attempt:
                delay = min(self.retry.max_backoff, self.retry.backoff * 2 ** (attempt - 1))
                log.info("%s: retry %d in %.1fs (%s)", name, attempt, delay, reason)
                self._sleep(delay)
            # Closed below on every path but success, where the caller owns it.
            out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)  # noqa: SIM115
            try:
                digest = self._get(url, out)
            except _Retryable as exc:
                out.close()
                reason = str(exc)
                continue
            except BaseException:
                out.close()
                raise
            try:
                self._verify(name, rpm, digest)
            except BaseException:
                out.close()
                raise
            out.seek(0)
            return cast(BinaryIO, out)
        raise DownloadError(f"{name}: {reason} (gave up after {self.retry.attempts} tries)")

    def _get(self, url: str, out: IO[bytes]) -> SigMD5:
        try:
            # verify per request: a session's verify loses to REQUESTS_CA_BUNDLE in requests.
            with self.http.get(url, stream=True, timeout=self.retry.timeout,
                               verify=self.instance.verify) as resp:
                if resp.status_code >= 500 or resp.status_code == 429:
                    raise _Retryable(f"HTTP {resp.status_code} from {url}")
                if resp.status_code == 404:
                    raise _NotThere(f"HTTP 404 from {url}")
                if resp.status_code != 200:
                    raise DownloadError(f"HTTP {resp.status_code} from {url}")
                digest = SigMD5()
                for chunk in resp.iter_content(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                return digest
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(f"{type(exc).__name__} fetching {url}: {exc}") from exc

    def _verify(self, name: str, rpm: RpmInfo, digest: SigMD5) -> None:
        size = rpm.get("size")
        if size is not None and digest.size != int(size):
            raise VerificationError(f"{name}: {digest.size} bytes, Koji says {size}")
        expected = str(rpm.get("payloadhash") or "").lower()
        if not expected:
            raise VerificationError(f"{name}: Koji has no payloadhash to verify against")
        got = digest.hexdigest()
        if got != expected:
            raise VerificationError(
                f"{name}: SIGMD5 {got} does not match Koji's payloadhash {expected}"
            )


class _Retryable(Exception):
    pass


class _NotThere(Exception):
    pass
