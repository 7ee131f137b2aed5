"""The hot lookups served in front of Django's ASGI handler (the default server setup).

Three routes carry nearly all of the traffic (hotroutes.py: ``GET/HEAD /buildids/<ids>``,
``GET/HEAD /api/v1/buildid/<id>``, ``POST /api/v1/buildids``), and for them Django's own
machinery (``HttpRequest``, URL resolving, middleware, ``HttpResponse``, a thread hop per
request) costs more than the database query does. This layer routes them from the same table
as Django's URLconf, answers through the functions the Django views call (answers.py: same
queries, same serializer, same JSON encoder) and sends the same status, headers and bytes
(tests/darkserver/test_fastpath_asgi.py compares the two). It counts the same metrics.

It runs on the event loop of gunicorn's uvicorn worker, whose HTTP layer (httptools, uvloop)
costs a fraction of gunicorn's own threaded one (docs/BENCHMARKS.md). Single lookups run on the
loop and batches on a thread of the worker's, each over a connection of its own (loopdb.py; a
large batch also over a helper's, batchsplit.py).
Everything else — another route or method, a malformed id, a batch body that is missing,
chunked, oversized, not JSON or of the wrong shape, a lookup that fails here — goes to Django
unchanged, so every error is made in one place.

It also answers the ASGI lifespan protocol (Django's handler does not), opening the worker's
connections at startup.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings

from darkserver.lookup import hotroutes, metrics, queries
from darkserver.lookup.answers import Answer
from darkserver.lookup.batchsplit import BatchSplit
from darkserver.lookup.coalesce import Coalescer
from darkserver.lookup.jsonout import CONTENT_TYPE, dumps
from darkserver.lookup.loopdb import LoopConnection

log = logging.getLogger(__name__)

_CONTENT_TYPE = (b"Content-Type", CONTENT_TYPE.encode())

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def body_length(content_length: str | None) -> int | None:
    """The length of a batch body that Django would read without complaint, or None (no or a
    bad Content-Length, or over DATA_UPLOAD_MAX_MEMORY_SIZE: Django answers those)."""
    try:
        length = int(content_length or "")
    except ValueError:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length <= 0 or (limit is not None and length > limit):
        return None
    return length


async def _read_body(receive: Receive, length: int) -> tuple[bytes | None, Receive]:
    """The request body when it is exactly ``length`` bytes (else None), and a receive that
    hands what was read to Django first."""
    chunks: list[bytes] = []
    size = 0
    more = True
    disconnected: Message | None = None
    while more and size <= length:
        message = await receive()
        if message["type"] != "http.request":
            disconnected = message
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            if disconnected is not None and not body:
                return disconnected
            return {"type": "http.request", "body": body, "more_body": more}
        if disconnected is not None:
            return disconnected
        return await receive()

    return (body if size == length and not more else None), replay


class AsgiFastPath:
    """ASGI middleware: the hot lookups here, everything else to ``app`` (Django)."""

    def __init__(self, app: ASGIApp, fast: bool = True) -> None:
        self.app = app
        self.fast = fast
        self.db = LoopConnection()
        # Batches (up to DARKSERVER_MAX_BATCH ids: ~10 ms per 1,000) run on a thread of their
        # own, over a connection of their own: on the loop, one would hold up every other
        # request of this worker for its whole length. sqlite3 and MySQLdb release the GIL
        # while the database works, and Python hands the GIL over every 5 ms.
        self.batches = ThreadPoolExecutor(1, thread_name_prefix="darkserver-batch")
        self.batch_db = LoopConnection(executor=self.batches)
        # A large batch's queries are read in two halves at once, the second by a helper
        # thread over a third connection (batchsplit.py).
        self.batch_split = BatchSplit(self.batch_db)
        # Single lookups that arrive together are read with one query (coalesce.py says why).
        self.coalescer = Coalescer(self._read_together)

    def _read_together(self, ids: list[bytes]) -> list[Any] | Awaitable[list[Any]]:
        """The rows of ``ids``: at once on SQLite (in-process), as an awaitable on MariaDB,
        whose statements do not block the loop."""
        metrics.FASTPATH_QUERY_IDS.observe(len(ids))
        if not self.db.nonblocking:
            return queries.raw_rows(ids, self.db.fetch)
        return self._read_nonblocking(ids)

    async def _read_nonblocking(self, ids: list[bytes]) -> list[Any]:
        found: list[Any] = []
        for start in range(0, len(ids), queries.CHUNK):
            size, params = queries.padded(ids[start : start + queries.CHUNK])
            found.extend(await self.db.fetch_async(size, params))
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] != "http" or not self.fast:
            await self.app(scope, receive, send)
        else:
            unanswered = await self.answer(scope, receive, send)
            if unanswered is not None:
                await self.app(scope, unanswered, send)

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer a hot lookup and return None; or return the receive with which Django is to
        answer it (it gives Django whatever body was read here)."""
        started = time.perf_counter()
        method = scope["method"]
        found = hotroutes.match(method, scope["path"])
        if found is None:
            return receive
        hot, values = found
        body = None
        if hot.body:
            length = body_length(_header(scope, b"content-length"))
            if length is None:
                return receive
            body, receive = await _read_body(receive, length)
        threaded = body is not None
        db = self.batch_db if threaded else self.db
        compute = hotroutes.prepare(hot, values, body,
                                    self.batch_split.fetch if threaded else db.fetch)
        if compute is None or not await db.ensure():
            return receive
        name = hot.name
        try:
            try:
                status, payload, extra = await self._compute(hot, values, compute, threaded)
            except Exception:
                # A connection the server dropped (a restart, wait_timeout) fails its next
                # query: one more try on a new connection loses nothing.
                if db.is_open or not await db.ensure():
                    raise
                status, payload, extra = await self._compute(hot, values, compute, threaded)
        except Exception as exc:
            log.warning("fast path failed (%r); Django answers %s %s", exc, method, scope["path"])
            return receive
        headers = [_CONTENT_TYPE]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
        headers.append((b"Content-Length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        # HEAD: the GET's headers and no body, as Django's handler does.
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
        metrics.request(name, method, status, time.perf_counter() - started)
        return None

    async def _compute(self, hot: hotroutes.HotRoute, values: dict[str, Any],
                       compute: Callable[[], Answer],
                       threaded: bool) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
        if threaded:
            return await asyncio.get_running_loop().run_in_executor(self.batches, _encoded,
                                                                    compute)
        assert hot.lookup_ids is not None  # every route without a body names its ids
        rows = await self.coalescer.rows([bytes.fromhex(i) for i in hot.lookup_ids(values)])
        # The same answer function over the rows read for this request's ids: its own bytes.
        coalesced = hotroutes.prepare(hot, values, None, queries.prefetched(rows))
        assert coalesced is not None  # prepare() accepted these values already
        return _encoded(coalesced)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.fast:  # a failure is logged; requests retry
                    await self.db.ensure()
                    await self.batch_db.ensure()
                # Everything loaded so far lives as long as the worker: out of the collector's
                # sight, full collections stop walking Django's ~10^5 objects (the p99).
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.db.discard()
                self.batches.submit(self.batch_db.discard).result()
                self.batches.shutdown()
                self.batch_split.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _encoded(compute: Callable[[], Answer]) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    status, doc, extra = compute()
    return status, dumps(doc), extra
