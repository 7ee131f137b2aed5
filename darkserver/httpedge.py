"""The HTTP edge of the default server setup: uvicorn's httptools protocol with bounds, and its
gunicorn worker (``conf/gunicorn.conf.py`` names :class:`EdgeWorker`).

uvicorn answers what its parser rejects — a URL of 64 KiB or more (httptools cannot split one),
raw bytes that are not allowed in a URL, a bad Content-Length, any malformed request — with a
``400 text/plain``, reads a request head of any size, and waits for a stalled request forever.
Here:

* every rejection is a JSON error document (``{"error", "status"}``, as the app's own), with
  the status that fits: 414 for a URL too long, 431 for a head too large, 408 for a request not
  received in time, else 400 naming what the parser found;
* the request line and headers are bounded (``DARKSERVER_MAX_HEADER_BYTES``, default 64 KiB;
  a URL also below 64 KiB);
* a request must arrive whole within ``DARKSERVER_READ_TIMEOUT`` seconds (default 30) of its
  first byte, and a new connection must start one within that time: a client that stalls is
  answered 408 (or, before it sent anything, just closed);
* each rejection is one log line of bounded length, never a traceback.

The body's size is bounded in the ASGI app (darkserver/asgi.py), where the route is known.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from darkcore import settings
from darkserver.logbounds import BoundedClientErrors, DropUvicornParserNotice

log = logging.getLogger("darkserver.httpedge")

# httptools splits a URL with 16-bit offsets: 65,535 bytes is the most it can route.
MAX_URL_BYTES = 65_535
# Longest text of a client's input quoted in a log line.
LOG_QUOTE = 200


def read_timeout() -> float:
    return float(settings.READ_TIMEOUT.get())


def max_header_bytes() -> int:
    return settings.MAX_HEADER_BYTES.get()


class Rejected(Exception):
    """A request the edge answers itself, with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_bytes(status: int, message: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 response carrying the JSON error document; the connection closes."""
    body = json.dumps({"error": message, "status": status}, separators=(",", ":")).encode()
    head = [STATUS_LINE[status]]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]
    head += [b"content-type: application/json\r\n", b"cache-control: no-store\r\n",
             b"content-length: " + str(len(body)).encode() + b"\r\n",
             b"connection: close\r\n\r\n"]
    return b"".join(head) + body


def quote(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= LOG_QUOTE else shown[:LOG_QUOTE] + f"... ({len(shown)} chars)"


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request heads, a read deadline and JSON
    errors. Everything else is uvicorn's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout()
        self.max_head = max_header_bytes()
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # bytes received while the current request's head is incomplete
        self._in_head = False
        self._in_request = False

    # --- the read deadline ----------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_request and (self.cycle is None or not self.cycle.response_started):
            self._reject(Rejected(408, f"request not received within {self.read_timeout:g} s"))
        else:  # a connection that never sent a request, or a response already under way
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_request = self._in_head = True
        self._head_bytes = 0
        self._arm()

    def on_message_complete(self) -> None:
        self._in_request = False
        self._disarm()
        super().on_message_complete()

    # --- bounds on the head ---------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            raise Rejected(414, f"URL longer than {MAX_URL_BYTES} bytes; to look up many "
                                "build-ids, POST them to /api/v1/buildids")

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        # A chunk that completes the head is bounded by the socket's read size; what arrives
        # while the head is still incomplete is counted against the limit.
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head:
                self._reject(Rejected(431, f"request line and headers larger than "
                                           f"{self.max_head} bytes"))

    # --- JSON errors ----------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this for every request its parser rejects, from its except clause."""
        error = sys.exc_info()[1]
        cause = error.__context__ if error is not None else None
        if isinstance(cause, Rejected):
            self._reject(cause)
        else:
            reason = str(error) if error is not None else msg
            self._reject(Rejected(400, f"malformed HTTP request: {reason}"))

    def _reject(self, rejected: Rejected) -> None:
        self._disarm()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
        log.warning("%s %s: %s (%s %s)", client, rejected.status, rejected.message,
                    quote(self.scope["method"]) if self.scope and "method" in self.scope else "-",
                    quote(self.url) if getattr(self, "url", b"") else "-")
        if not self.transport.is_closing():
            self.transport.write(error_bytes(rejected.status, rejected.message,
                                             self.server_state.default_headers))
            self.transport.close()


class EdgeWorker(UvicornWorker):
    """gunicorn's uvicorn worker speaking through :class:`EdgeProtocol` on uvloop."""

    CONFIG_KWARGS = {"loop": "uvloop", "http": EdgeProtocol}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.addFilter(DropUvicornParserNotice())
        for handler in uvicorn_log.handlers:  # gunicorn's, shared with its own messages
            handler.addFilter(BoundedClientErrors())
