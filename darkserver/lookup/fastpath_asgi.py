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

With the answer cache on (``DARKSERVER_ANSWER_CACHE_MB``, answercache.py), a lookup whose ids
all have their fragment cached is put together from them on the loop (fragments.py: the same
bytes) without touching the database; the others read their ids (a batch only those not cached)
and keep what they made.

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

from darkserver.lookup import hotroutes, loopdb, metrics, queries, serialize
from darkserver.lookup.answercache import AnswerCache
from darkserver.lookup.answers import Answer
from darkserver.lookup.batchsplit import BatchSplit
from darkserver.lookup.coalesce import Coalescer, Found
from darkserver.lookup.fragments import Form
from darkserver.lookup.jsonout import CONTENT_TYPE, dumps, dumps_orjson
from darkserver.lookup.loopdb import LoopConnection

log = logging.getLogger(__name__)

_CONTENT_TYPE = (b"Content-Type", CONTENT_TYPE.encode())

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Encoded = tuple[int, bytes, tuple[tuple[str, str], ...]]  # status, body, extra headers


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

    def __init__(self, app: ASGIApp, fast: bool = True,
                 answer_cache_bytes: int | None = None) -> None:
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
        if answer_cache_bytes is None:
            answer_cache_bytes = int(float(settings.DARKSERVER_ANSWER_CACHE_MB) * (1 << 20))
        # The worker's answer cache, told of the generation by each of its connections.
        self.answers = AnswerCache(answer_cache_bytes)
        self._refresh_task: asyncio.Task[None] | None = None  # the last _refresh
        if self.answers.enabled:
            for db in (self.db, self.batch_db, self.batch_split.helper):
                db.on_generation = self.answers.seen

    def _read_together(self, ids: list[bytes]) -> Found | Awaitable[Found]:
        """The rows of ``ids`` and the generation they were read under (None: several): at
        once on SQLite (in-process), as an awaitable on MariaDB, whose statements do not block
        the loop. No ids: a refresh, the generation alone (_refresh)."""
        if not ids:
            if not self.db.nonblocking:
                self.db.fetch(loopdb.REFRESH, {})
                return [], self.db.generation
            return self._refresh_nonblocking()
        metrics.FASTPATH_QUERY_IDS.observe(len(ids))
        if not self.db.nonblocking:
            fetch, generation = _tagged(self.db.fetch, lambda: self.db.generation)
            return queries.raw_rows(ids, fetch), generation()
        return self._read_nonblocking(ids)

    async def _refresh_nonblocking(self) -> Found:
        await self.db.fetch_async(loopdb.REFRESH, {})
        return [], self.db.generation

    async def _read_nonblocking(self, ids: list[bytes]) -> Found:
        found: list[Any] = []
        generations = set()
        for start in range(0, len(ids), queries.CHUNK):
            size, params = queries.padded(ids[start : start + queries.CHUNK])
            found.extend(await self.db.fetch_async(size, params))
            generations.add(self.db.generation)  # before the connection runs anything else
        return found, generations.pop() if len(generations) == 1 else None

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
        checked = hotroutes.lookup_values(hot, values, body)
        if checked is None:
            return receive
        ids = hot.lookup_ids(checked)
        cached = None
        if self.answers.enabled and not threaded:  # a batch looks in the cache on its thread
            cached = self._cached(hot.form, ids)
        if cached is not None:
            status, payload, extra = cached
        else:
            db = self.batch_db if threaded else self.db
            if not await db.ensure():
                return receive
            try:
                try:
                    status, payload, extra = await self._compute(hot, checked, ids, threaded)
                except Exception:
                    # A connection the server dropped (a restart, wait_timeout) fails its next
                    # query: one more try on a new connection loses nothing.
                    if db.is_open or not await db.ensure():
                        raise
                    status, payload, extra = await self._compute(hot, checked, ids, threaded)
            except Exception as exc:
                log.warning("fast path failed (%r); Django answers %s %s", exc, method,
                            scope["path"])
                return receive
        name = hot.name
        headers = [_CONTENT_TYPE]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
        headers.append((b"Content-Length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        # HEAD: the GET's headers and no body, as Django's handler does.
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
        metrics.request(name, method, status, time.perf_counter() - started)
        return None

    async def _compute(self, hot: hotroutes.HotRoute, values: dict[str, Any], ids: list[str],
                       threaded: bool) -> Encoded:
        if threaded:
            return await asyncio.get_running_loop().run_in_executor(
                self.batches, self._batch, hot, values, ids)
        rows, generation = await self.coalescer.rows([bytes.fromhex(i) for i in ids])
        if self.answers.enabled and len(ids) > 1:
            made = self._made(hot.form, ids, [None] * len(ids), queries.prefetched(rows),
                              lambda: generation)
            if made is not None:
                return made
        # The same answer function over the rows read for this request's ids: its own bytes.
        status, doc, extra = hot.answer(values, queries.prefetched(rows))
        payload = dumps_orjson(doc)
        if payload is None:  # nothing to keep: no fragment stands for this encoding
            return status, dumps(doc), extra
        if self.answers.enabled:
            fragment = hot.form.cut(ids[0], status, payload)
            if fragment is not None:
                self.answers.put_many([(hot.form.key(ids[0]), fragment)], generation)
            metrics.answer_cache(0, 1)
        return status, payload, extra

    def _batch(self, hot: hotroutes.HotRoute, values: dict[str, Any], ids: list[str]) -> Encoded:
        """A batch's answer, on the batch thread: from the cached fragments and those made
        from reading the other ids, or (no cache; a document orjson refuses) as answers.py
        makes it."""
        if self.answers.enabled:
            known = self.answers.get_many([hot.form.key(i) for i in ids])
            fetch, generation = _tagged(self.batch_split.fetch,
                                        lambda: self.batch_split.generation)
            made = self._made(hot.form, ids, known, fetch, generation)
            if made is not None:
                return made
        return _encoded(lambda: hot.answer(values, self.batch_split.fetch))

    def _cached(self, form: Form, ids: list[str]) -> Encoded | None:
        """The answer of a lookup whose ids all have their fragment cached, else None."""
        known = self.answers.get_many([form.key(i) for i in ids])
        if None in known:
            return None
        metrics.answer_cache(len(ids), 0)
        if self.answers.refresh_due() and not self._refreshing():
            loop = asyncio.get_running_loop()
            self._refresh_task = loop.create_task(self._refresh())
        return form.assemble(ids, known)  # type: ignore[arg-type]  # no None in known

    async def _refresh(self) -> None:
        """Read the generation before the cache stops being fresh (answercache.REFRESH_AFTER),
        so that while every lookup is answered from the cache none waits for that read. It
        queues like a lookup (the connection runs one statement at a time)."""
        try:
            if await self.db.ensure():
                await self.coalescer.rows([])
        except Exception as exc:  # the next lookups read it themselves, or go to Django
            log.info("fast path: reading the generation failed (%r)", exc)

    def _refreshing(self) -> bool:
        """Whether a _refresh is under way on this loop (one of a loop that stopped is not)."""
        task = self._refresh_task
        return (task is not None and not task.done()
                and task.get_loop() is asyncio.get_running_loop())

    def _made(self, form: Form, ids: list[str], known: list[bytes | None],
              fetch: queries.Fetch, generation: Callable[[], int | None]) -> Encoded | None:
        """The answer from the fragments ``known`` (None: not cached) and those made from the
        rows ``fetch`` reads for the others, which are cached under ``generation()`` (called
        after the reads); None when orjson refuses one (answers.py then answers)."""
        wanted = list(dict.fromkeys(i for i, f in zip(ids, known, strict=True) if f is None))
        found = queries.by_build_ids(wanted, fetch) if wanted else {}
        shared = serialize.Matches()  # one package's documents made once per answer
        made: dict[str, bytes] = {}
        for buildid in wanted:
            fragment = form.make(found.get(buildid, []), shared)
            if fragment is None:
                return None
            made[buildid] = fragment
        if made:
            self.answers.put_many([(form.key(i), f) for i, f in made.items()], generation())
        metrics.answer_cache(len(ids) - len(wanted), len(wanted))
        return form.assemble(ids, [made[i] if f is None else f
                                   for i, f in zip(ids, known, strict=True)])

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


def _encoded(compute: Callable[[], Answer]) -> Encoded:
    status, doc, extra = compute()
    return status, dumps(doc), extra


def _tagged(fetch: queries.Fetch, generation: Callable[[], int | None]) -> tuple[
        queries.Fetch, Callable[[], int | None]]:
    """``fetch`` noting ``generation()`` after each of its reads, and the generation all the
    reads so far were made under (None: none, or several)."""
    seen: set[int | None] = set()

    def tagged(size: int, params: dict[str, bytes]) -> Any:
        rows = fetch(size, params)
        seen.add(generation())
        return rows

    return tagged, lambda: next(iter(seen)) if len(seen) == 1 else None
