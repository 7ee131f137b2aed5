"""The ASGI fast path's own database connections: one used on the event-loop thread, one on the
worker's batch thread.

Django refuses blocking database calls on a thread that runs an event loop (its connections are
also context-local there, which would mean one connection per request). The hot lookups are
single indexed queries of well under a millisecond, so each worker process keeps one plain
DB-API connection for them and runs them on the loop, the way a sync worker would; everything
else goes through Django, whose ASGI handler runs views on its own thread and connections.
Batches run on a thread of their own with a second connection (fastpath_asgi.py says why).

On MariaDB the event loop's connection does not block the loop: a statement is sent, the loop
goes on serving, and the answer is read when the socket is readable (fetch_async). The batch
connections use the blocking fetch on their threads.

Each connection reads the ELF table alone per lookup and adds the package and build columns
from a cache of its own (pkgcache.py: why, and how it learns of the importer's changes); the
rows it returns are the joined query's rows, so the answers are the same bytes.

The connection is opened by Django's backend (same settings, same ``init_command``, autocommit)
on an executor thread, so opening it never blocks the loop and never trips Django's check. A
failed query drops it; the next request opens a new one, at most once a second while the
database stays unreachable (meanwhile Django answers, or returns its JSON error).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Executor
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.utils import load_backend

from darkserver.lookup import counters, queries, replicas
from darkserver.lookup.models import Counter
from darkserver.lookup.pkgcache import PackageCache

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
# fetch()/fetch_async() of this size read the generation counter alone (a refresh of the
# caches that do not wait for a lookup to need it: fastpath_asgi.py).
REFRESH = 0
Statement = tuple[str, dict[str, Any]]  # SQL and its parameters


class LoopConnection:
    """One database connection of the fast path's, used by one thread at a time: the event
    loop's (single lookups) or the batch thread (``executor``, which also opens it)."""

    def __init__(self, overrides: dict[str, Any] | None = None,
                 executor: Executor | None = None) -> None:
        # Settings that differ from the alias's own (the tests point one at a dead server).
        self.overrides = dict(overrides or {})
        self.executor = executor  # where it is opened (None: the loop's default executor)
        self._db: Any = None  # Django's DatabaseWrapper holding the open DB-API connection
        self.alias = ""  # the database it is open on (a read replica or the primary)
        self._chosen_at = 0.0  # when that database was last confirmed as the one to read
        self._sql: dict[int, tuple[str, str]] = {}  # size -> (ELF-only, package part) SQL
        self._generation_sql = ""
        self._failed_at = float("-inf")
        self.cache = PackageCache()
        # Told (generation, when it was asked for) at each read of the generation counter: the
        # worker's answer cache (answercache.AnswerCache.seen).
        self.on_generation: Callable[[int, float], None] | None = None
        self.busy = False  # a non-blocking query is under way (not to be closed meanwhile)
        self._busy_loop: asyncio.AbstractEventLoop | None = None  # the loop it runs on
        self._watched: tuple[asyncio.AbstractEventLoop, Any, int] | None = None  # add_reader
        self._answer: asyncio.Future[Sequence[Sequence[Any]]] | None = None  # rows to come

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def generation(self) -> int | None:
        """The generation under which the last fetch's rows were read (None: unknown). Read it
        before the connection runs anything else."""
        return self.cache.generation

    @property
    def nonblocking(self) -> bool:
        """Whether fetch_async lets the loop run while the server works (MariaDB)."""
        return self._db is not None and self._db.vendor == "mysql"

    async def ensure(self) -> bool:
        """Open the connection when it is not; False while the database cannot be reached.

        With read replicas, the choice of database is confirmed every replica check interval
        (off the loop): a connection to a replica that is now lagging, or to the primary while
        a replica is healthy again, is closed and the better one opened."""
        if self.busy and self._busy_loop is not asyncio.get_running_loop():
            # A statement left unread by a loop that stopped (the tests run a loop per
            # request): its answer would be read as the next statement's.
            self.busy = False
            self.discard()
        if self._db is not None:
            if not settings.READ_REPLICAS or self.busy or not self._choice_is_stale():
                return True
            self._chosen_at = time.monotonic()
            try:
                best = await asyncio.get_running_loop().run_in_executor(
                    self.executor, replicas.read_alias
                )
            except Exception:  # the check itself failed: keep what works
                log.debug("fast path: replica check failed", exc_info=True)
                return True
            if best == self.alias:
                return True
            log.info("fast path: reading from %s instead of %s", best, self.alias)
            self.discard()
        if time.monotonic() - self._failed_at < RETRY_SECONDS:
            return False
        try:
            self._db, self._sql, self._generation_sql = (
                await asyncio.get_running_loop().run_in_executor(self.executor, self._open)
            )
        except Exception as exc:
            self._failed_at = time.monotonic()
            log.warning("fast path: cannot open the database (%s); Django answers meanwhile", exc)
            return False
        return True

    def open_blocking(self) -> bool:
        """Open the connection on the calling thread (one without an event loop: the batch
        helper's), at most once a RETRY_SECONDS while it fails; False when it is not open."""
        if self._db is not None:
            return True
        if time.monotonic() - self._failed_at < RETRY_SECONDS:
            return False
        try:
            self._db, self._sql, self._generation_sql = self._open()
        except Exception as exc:
            self._failed_at = time.monotonic()
            log.warning("fast path: cannot open the database (%s)", exc)
            return False
        return True

    def _choice_is_stale(self) -> bool:
        elapsed = time.monotonic() - self._chosen_at
        return elapsed >= float(settings.DARKSERVER_REPLICA_CHECK_SECONDS)

    def _open(self) -> tuple[Any, dict[int, tuple[str, str]], str]:
        alias = queries.lookup_alias()
        self.alias, self._chosen_at = alias, time.monotonic()
        settings_dict = connections.settings[alias] | self.overrides
        db = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
        db.ensure_connection()
        self.cache.clear()  # maybe another database: nothing cached holds
        # The statements are compiled here too: compiling may ask the server for its version.
        style = "named" if db.vendor == "sqlite" else "pyformat"
        quote = db.ops.quote_name
        generation = (f"SELECT {quote('value')} FROM {quote(Counter._meta.db_table)} "
                      f"WHERE {quote('name')} = '{counters.GENERATION}'")
        return db, {n: queries.split_sql(alias, n, style) for n in queries.IN_SIZES}, generation

    def fetch(self, size: int, params: dict[str, bytes]) -> Sequence[Sequence[Any]]:
        """queries.Fetch over this connection, blocking (the batch threads; SQLite); a
        database error drops the connection and propagates."""
        if self._db is None:
            raise RuntimeError("the fast path's connection is not open")
        try:
            cursor = self._db.connection.cursor()
            try:
                steps = self._steps(size, params)
                statement = next(steps)
                while True:
                    statement = steps.send(self._run(cursor, *statement))
            except StopIteration as done:
                rows: Sequence[Sequence[Any]] = done.value
                return rows
            finally:
                cursor.close()
        except Exception as exc:
            self._failed(exc)
            raise

    async def fetch_async(self, size: int,
                          params: dict[str, bytes]) -> Sequence[Sequence[Any]]:
        """fetch() for the event loop: on MariaDB the loop goes on serving while the server
        works on each statement (sent, then read when its socket is readable); SQLite answers
        in-process, so it is simply called."""
        if not self.nonblocking:
            return self.fetch(size, params)
        self.busy, self._busy_loop = True, asyncio.get_running_loop()
        try:
            steps = self._steps(size, params)
            statement = next(steps)
            while True:
                statement = steps.send(await self._run_async(*statement))
        except StopIteration as done:
            rows: Sequence[Sequence[Any]] = done.value
            return rows
        except asyncio.CancelledError:  # the answer is left unread: the connection is done
            self.discard()
            raise
        except Exception as exc:
            self._failed(exc)
            raise
        finally:
            self.busy = False

    def _steps(self, size: int, params: dict[str, bytes]) -> Generator[
            Statement, Sequence[Sequence[Any]], Sequence[Sequence[Any]]]:
        """The statements of one lookup, each sent in and its rows received (the same for the
        blocking and the non-blocking driver); returns the full rows (queries.MATCH_FIELDS):
        the generation when due, the ELF-only statement, the package parts not cached.
        ``size`` 0 (REFRESH): the generation alone, due or not, and no rows."""
        cache = self.cache
        if size == REFRESH:
            yield from self._generation()
            return []
        elf_sql = self._sql[size][0]
        for attempt in (1, 2):
            if cache.due():
                yield from self._generation()
            elf_rows = yield elf_sql, params
            missing = cache.missing(elf_rows)
            for start in range(0, len(missing), queries.CHUNK):
                part_size, part_params = queries.padded(missing[start : start + queries.CHUNK])
                cache.add((yield self._sql[part_size][1], part_params), elf_rows)
            rows, complete = cache.join(elf_rows)
            if complete or attempt == 2:
                return rows
            # A package was replaced between the two reads: read both again, afresh.
            cache.clear()
        raise AssertionError("unreachable")  # pragma: no cover

    def _generation(self) -> Generator[Statement, Sequence[Sequence[Any]], None]:
        """Read the generation counter; the package cache and ``on_generation`` learn it, with
        the time it was asked for."""
        asked_at = self.cache.clock()
        found = yield self._generation_sql, {}
        generation = int(found[0][0]) if found else 0
        self.cache.seen(generation, asked_at)
        if self.on_generation is not None:
            self.on_generation(generation, asked_at)

    def _statement(self, sql: str, params: dict[str, Any]) -> str:
        # MySQLdb escapes every bytes parameter in Python (~2.5 ms for a batch of 1,000 ids); a
        # build-id as a hex literal needs no escaping at all, nor does an integer.
        literals = {name: f"X'{value.hex()}'" if isinstance(value, bytes) else str(int(value))
                    for name, value in params.items()}
        return sql % literals if literals else sql

    def _run(self, cursor: Any, sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        assert self._db is not None
        if self._db.vendor == "mysql":
            cursor.execute(self._statement(sql, params))
        else:
            cursor.execute(sql, params)
        rows: Sequence[Sequence[Any]] = cursor.fetchall()
        return rows

    async def _run_async(self, sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """One statement over MySQLdb's own send/read halves, waiting on the loop between them:
        the rows are what a cursor gives (the same result object and converters)."""
        assert self._db is not None
        conn = self._db.connection
        loop = asyncio.get_running_loop()
        if self._watched is None or self._watched[:2] != (loop, conn):
            # Watched for as long as the connection lives: two epoll_ctl calls per statement
            # saved. (The tests run an event loop per request; requests that fail together
            # may each open a connection, the last one opened staying.)
            self._unwatch()
            fd = conn.fileno()
            loop.add_reader(fd, self._on_readable, conn)
            self._watched = (loop, conn, fd)
        conn.send_query(self._statement(sql, params).encode())
        self._answer = loop.create_future()
        return await self._answer

    def _on_readable(self, conn: Any) -> None:
        """The answer arrived: read it here, so that the socket is drained before the loop
        looks at it again."""
        answer, self._answer = self._answer, None
        if answer is None or answer.done():
            # Nothing asked (or the asker is gone): the server closed the connection
            # (wait_timeout, a restart). Dropped, or the loop would wake for it again and again.
            if self._db is not None and self._db.connection is conn:
                self.discard()
            else:  # one replaced meanwhile (requests that failed together each opened one)
                self._unwatch()
            return
        try:
            conn.read_query_result()
            result = conn.store_result()
            answer.set_result(result.fetch_row(0) if result is not None else ())
        except Exception as exc:
            answer.set_exception(exc)

    def _failed(self, exc: Exception) -> None:
        self.discard()
        replicas.mark_down(self.alias, f"query failed: {exc}", close=False)

    def _unwatch(self) -> None:
        if self._watched is not None:
            loop, _conn, fd = self._watched
            self._watched = None
            loop.remove_reader(fd)  # a loop already closed ignores it

    def discard(self) -> None:
        self._unwatch()
        db, self._db = self._db, None
        if db is not None and db.connection is not None:
            try:
                db.connection.close()  # the raw close: the wrapper's refuses to run on a loop
            except Exception:
                log.debug("closing a broken fast-path connection failed", exc_info=True)
