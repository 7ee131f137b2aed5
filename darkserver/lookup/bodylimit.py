"""The request body's bound, in front of everything else of the ASGI app (darkserver/asgi.py).

Django's ASGI handler reads a whole body — to a temporary file past 2.5 MB — before any view
sees the request, whatever the route and whatever Content-Length says; and it takes a chunked
body of any length. Here a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``
(``DARKSERVER_MAX_BODY``) is refused with the batch view's own 413 and never stored: up to
DRAIN_FACTOR times the limit it is read and dropped first (a client still sending would
otherwise see its connection reset instead of the answer), beyond that the answer goes at once;
and a chunked body is read up to that bound and handed on with the Content-Length it
turned out to have (so the fast path and Django take it like any other).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from darkserver.lookup.errors import ERROR_HEADERS, error_doc
from darkserver.lookup.jsonout import CONTENT_TYPE, dumps

# How much of an oversized body is read (and dropped) so that the client gets to read the 413.
DRAIN_FACTOR = 8

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def too_large(limit: int) -> tuple[int, bytes]:
    """The 413 the batch view answers (errors.api), as status and body."""
    doc = error_doc(413, f"request body too large; at most {limit} bytes", limit=limit)
    return 413, dumps(doc)


async def send_json(send: Send, status: int, body: bytes) -> None:
    headers = [(b"Content-Type", CONTENT_TYPE.encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in ERROR_HEADERS]
    headers.append((b"Content-Length", str(len(body)).encode()))
    # The body was not read: the connection cannot carry another request.
    headers.append((b"Connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware bounding request bodies; see the module's docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = chunked = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = value
        if length is not None:
            # The HTTP parser has checked that it is a number.
            if limit is not None and int(length) > limit:
                if int(length) <= DRAIN_FACTOR * limit:
                    await _discard(receive)
                await send_json(send, *too_large(limit))
                return
        elif chunked is not None:
            body = await self._read(receive, limit)
            if body is None:
                await send_json(send, *too_large(limit))
                return
            scope = dict(scope)
            scope["headers"] = [
                *(h for h in scope["headers"] if h[0] != b"transfer-encoding"),
                (b"content-length", str(len(body)).encode()),
            ]
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    @staticmethod
    async def _read(receive: Receive, limit: int | None) -> bytes | None:
        """The whole chunked body, or None past ``limit`` bytes (read on and dropped up to
        DRAIN_FACTOR times the limit) or when the client left."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if limit is not None and size > limit:
                chunks.clear()  # kept no longer; read on (up to the drain bound) and dropped
                if not more or size > DRAIN_FACTOR * limit:
                    return None
                continue
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)


async def _discard(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
