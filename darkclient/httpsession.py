"""A requests Session that reads the environment's proxy and CA settings once per host.

requests, trusting the environment, works out the proxies of every request from scratch:
``get_environ_proxies`` walks ``os.environ`` and the no_proxy list on each call, ~0.6 ms, more
than a lookup on a local Darkserver takes (``darkclient serve`` answers each of a debugger's
requests with a lookup and a download, one after the other). The answer depends only on the
URL's scheme and host and on the environment, which a running client does not change, so it is
worked out once per host. Redirects still go through requests' own per-hop rules.

``small``: a request with a small answer (the Darkserver's JSON) over a connection kept per
host (shared by threads), by the standard library's http.client, when the URL is plain
http:// and no proxy applies to it; requests otherwise. ``download`` streams a package the
same way. requests and urllib3 spend ~0.4 ms of their own on each request (measured against
a local Darkserver: 0.77 against 0.34 ms per lookup), once per module a debugger asks
``darkclient serve`` for. Failures raise requests' own exceptions, so callers handle both the
same way.
"""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, urlsplit

import requests
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies

# A kept connection the server closed meanwhile (its keep-alive timeout) fails like this on
# its next request; the request is then sent once more on a new connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
MAX_IDLE = 16  # idle kept connections per host (serve's threads at once, and some)


class EnvOnceSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._proxies: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self._lock = threading.Lock()
        # requests' (and curl's) CA bundle variables, read once as well.
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        # Idle kept connections by host, shared by every thread: ``darkclient serve`` answers
        # each debugger request on a new thread (libdebuginfod opens a connection per
        # request), so connections kept per thread would never be used twice.
        self._idle: dict[str, list[http.client.HTTPConnection]] = {}

    def _environ_proxies(self, url: str, no_proxy: str | None) -> dict[str, str]:
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.netloc.lower(), no_proxy)
        with self._lock:
            found = self._proxies.get(key)
        if found is None:
            found = dict(get_environ_proxies(url, no_proxy=no_proxy))
            with self._lock:
                self._proxies[key] = found
        return found

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        # The same merge as requests', with the environment's part remembered per host.
        if proxies is not None:
            for scheme, proxy in self._environ_proxies(
                    str(url), proxies.get("no_proxy")).items():
                proxies.setdefault(scheme, proxy)
        if (verify is True or verify is None) and self._ca_bundle:
            verify = self._ca_bundle
        return {"proxies": merge_setting(proxies, self.proxies),
                "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify),
                "cert": merge_setting(cert, self.cert)}

    def _lane(self, url: str) -> SplitResult | None:
        """``url``'s parts when it goes over a kept connection: http://, no proxy."""
        parts = urlsplit(url)
        if (parts.scheme != "http" or not parts.hostname or self.proxies or not self.trust_env
                or self._environ_proxies(url, None)):
            return None
        return parts

    def small(self, method: str, url: str, timeout: float, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> requests.Response:
        """``method`` on ``url`` with the whole answer read (no redirects followed)."""
        parts = self._lane(url)
        if parts is None:
            return self.request(method, url, data=body, headers=headers,
                                timeout=(timeout, timeout), allow_redirects=False)
        return self._kept_request(parts, method, url, timeout, timeout, body, headers, False)

    def download(self, url: str, timeout: float, connect: float) -> requests.Response:
        """A GET whose body is streamed (a package; close the response); redirects are
        followed, by requests when the kept connection meets one."""
        parts = self._lane(url)
        if parts is not None:
            resp = self._kept_request(parts, "GET", url, connect, timeout, None, None, True)
            if not resp.is_redirect:
                return resp
            resp.close()
        return self.get(url, stream=True, timeout=(connect, timeout))

    def _kept_request(self, parts: SplitResult, method: str, url: str, connect: float,
                      timeout: float, body: bytes | None, headers: dict[str, str] | None,
                      stream: bool) -> requests.Response:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        sent = {"User-Agent": str(self.headers.get("User-Agent", "")), **(headers or {})}
        host, netloc = str(parts.hostname), parts.netloc

        def give_back(conn: http.client.HTTPConnection, answer: http.client.HTTPResponse) -> None:
            # Read to its end: closed, and nothing of a promised length left (a body cut
            # short closes too).
            if answer.isclosed() and not answer.length and not answer.will_close:
                with self._lock:
                    idle = self._idle.setdefault(netloc, [])
                    if len(idle) < MAX_IDLE:
                        idle.append(conn)
                        return
            # Not reusable: the body not read to its end, the server closing, or enough idle.
            answer.close()
            conn.close()

        for attempt in (0, 1):
            with self._lock:  # this request's until given back
                idle = self._idle.get(netloc)
                conn = idle.pop() if idle else None
            reused = conn is not None
            if conn is None:
                conn = http.client.HTTPConnection(host, parts.port or 80, timeout=connect)
            try:
                answer = _send(conn, method, target, body, sent, connect, timeout, url)
            except _STALE as exc:
                conn.close()
                if not reused or attempt:
                    raise requests.exceptions.ConnectionError(f"{url}: {exc}") from None
                continue
            except BaseException:
                conn.close()
                raise
            resp = requests.Response()
            resp.status_code = answer.status
            resp.headers = CaseInsensitiveDict(answer.getheaders())
            resp.url = url
            resp.reason = answer.reason
            if stream:
                resp.raw = _Body(answer, conn, url, give_back)
                return resp
            try:
                resp._content = _read(answer, -1, url)
            except BaseException:
                conn.close()
                raise
            give_back(conn, answer)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        super().close()


def _send(conn: http.client.HTTPConnection, method: str, target: str, body: bytes | None,
          headers: dict[str, str], connect: float, timeout: float,
          url: str) -> http.client.HTTPResponse:
    """The response to one request on ``conn`` (its body not read), with requests'
    exceptions for a connection or an answer that does not come."""
    if conn.sock is None:
        conn.timeout = connect
        try:
            conn.connect()
        except TimeoutError:
            raise requests.exceptions.ConnectTimeout(url) from None
        except OSError as exc:  # refused, unreachable: requests' words for them
            raise requests.exceptions.ConnectionError(f"{url}: {exc}") from None
    conn.sock.settimeout(timeout)
    try:
        conn.request(method, target, body=body, headers=headers)
        return conn.getresponse()
    except _STALE:
        raise
    except TimeoutError:
        raise requests.exceptions.ReadTimeout(url) from None
    except (OSError, http.client.HTTPException) as exc:
        raise requests.exceptions.ConnectionError(f"{url}: {exc}") from None


def _read(answer: http.client.HTTPResponse, size: int, url: str) -> bytes:
    try:
        return answer.read(size if size > 0 else None)
    except TimeoutError:
        raise requests.exceptions.ReadTimeout(url) from None
    except (OSError, http.client.HTTPException) as exc:
        raise requests.exceptions.ConnectionError(f"{url}: {exc}") from None


class _Body:
    """A streamed answer's body as requests reads it (``raw``): ``read`` in chunks, then
    ``release_conn``, which keeps the connection when the body was read to its end."""

    def __init__(self, answer: http.client.HTTPResponse, conn: http.client.HTTPConnection,
                 url: str, give_back: Callable[[http.client.HTTPConnection,
                                                http.client.HTTPResponse], None]) -> None:
        self._answer = answer
        self._conn: http.client.HTTPConnection | None = conn
        self._url = url
        self._give_back = give_back

    def read(self, size: int = -1, **_: Any) -> bytes:
        return _read(self._answer, size if isinstance(size, int) else -1, self._url)

    def release_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._give_back(conn, self._answer)

    def close(self) -> None:
        self.release_conn()
