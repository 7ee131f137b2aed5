"""Single lookups that arrive together on a worker's event loop, answered by one query.

On MariaDB a lookup's cost is per query, not per id (mariadbd CPU per looked-up id for the
lookup join: ~159 us at 1 id per query, ~36 us at 8, ~21 us at 32). A busy worker holds several
single lookups at once: while the loop runs one query, the next requests wait in their sockets,
and the loop then starts them all in one go. Each asks ``Coalescer.rows`` for its ids; the first
schedules a flush with ``call_soon``, which runs after every request started in the same pass
of the loop has added its ids, and reads them all with one query (one per CHUNK ids). A request
alone waits for nothing: its flush runs in the loop's next pass.

On MariaDB the query does not block the loop (loopdb.LoopConnection.fetch_async): while it
runs, the worker reads and parses the next requests, whose ids wait for it to end and are then
read together by the next query, at once. One query at a time per connection, so nothing waits
for anything but the connection; the busier the worker, the more ids each query carries.

Each request then builds its answer from the rows of its own ids (queries.prefetched), through
the same lookup functions and serializer as always, so its bytes are what its own query would
have given. With the rows comes the read's tag (the generation they were read under: the answer
cache keeps what it makes of them only under that generation, answercache.py). A failing query
fails every request of that flush alike (each then retries, or goes to Django, as a failed
lookup did before); one request's id cannot fail another's, since ids are validated before
they get here.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Rows = list[Sequence[Any]]
Found = tuple[Rows, Any]  # the rows read and the read's tag
Waiting = list[tuple[list[bytes], "asyncio.Future[Found]"]]


class Coalescer:
    """``rows(ids)`` for requests on one event loop, read together by ``read(ids)``: rows and
    tag at once (SQLite, in-process) or an awaitable of them (MariaDB: the loop serves
    meanwhile)."""

    def __init__(self, read: Callable[[list[bytes]], Found | Awaitable[Found]]) -> None:
        self.read = read  # all rows of the given distinct ids, on the loop; one call at a time
        self._waiting: Waiting = []
        self._busy = False  # a flush is scheduled or its query under way
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop it is busy on
        self.flushes = 0  # queries rounds run (a test counts them)

    async def rows(self, ids: list[bytes]) -> Found:
        """The rows of ``ids``, read together with those of every request waiting now, and the
        read's tag."""
        loop = asyncio.get_running_loop()
        if self._busy and self._loop is not loop:
            # Left busy by a loop that stopped before its read ended (the tests run a loop per
            # request): its requests are gone with it.
            self._waiting, self._busy = [], False
        future: asyncio.Future[Found] = loop.create_future()
        self._waiting.append((ids, future))
        if not self._busy:
            self._busy, self._loop = True, loop
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        self.flushes += 1
        wanted = list(dict.fromkeys(i for ids, _future in waiting for i in ids))
        try:
            found = self.read(wanted)
        except Exception as exc:
            self._answer(waiting, exc)
            return
        if isinstance(found, tuple):
            self._answer(waiting, found)
        else:
            # A task of its own: a request cancelled (its client gone) must not cancel the
            # query that the others wait for.
            task = asyncio.get_running_loop().create_task(self._answer_later(waiting, found))
            task.add_done_callback(functools.partial(self._cancelled, waiting))

    async def _answer_later(self, waiting: Waiting, reading: Awaitable[Found]) -> None:
        try:
            found: Found | Exception = await reading
        except Exception as exc:
            found = exc
        self._answer(waiting, found)

    def _cancelled(self, waiting: Waiting, task: asyncio.Task[None]) -> None:
        """A read's task ended; cancelled (the loop is stopping: a worker's shutdown, the tests'
        loop per request), perhaps before it ran at all: every request waiting fails instead of
        waiting for ever, and the next one reads again."""
        if not task.cancelled():
            return
        gone = ConnectionAbortedError("the fast path's read was cancelled")
        for _ids, future in [*waiting, *self._waiting]:
            if not future.done():
                future.set_exception(gone)
        self._waiting = []
        self._busy = False

    def _answer(self, waiting: Waiting, found: Found | Exception) -> None:
        """Each waiting request gets the rows of its own ids (or the failure), and whoever
        arrived meanwhile is read next, at once."""
        try:
            if isinstance(found, Exception):
                for _ids, future in waiting:
                    if not future.done():
                        future.set_exception(found)
                return
            rows, tag = found
            by_id: dict[bytes, Rows] = {}
            for row in rows:
                by_id.setdefault(bytes(row[0]), []).append(row)
            for ids, future in waiting:
                if not future.done():  # a request whose client went away was cancelled
                    mine = [r for i in dict.fromkeys(ids) for r in by_id.get(i, ())]
                    future.set_result((mine, tag))
        finally:
            if self._waiting:
                self._flush()
            else:
                self._busy = False
