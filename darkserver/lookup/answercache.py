"""Per web worker: a build-id's part of a lookup answer, as the bytes the answer holds.

Even with coalesced, non-blocking queries every lookup costs a MariaDB round trip (mariadbd
~70-100 us of CPU, the worker ~160-290 us to read the rows and build the answer), and on a
2-core machine that caps the rate below debuginfod's. Clients ask for the same few thousand
build-ids over and over (the libraries every core links), so each worker keeps, per id, the
JSON fragment its answers are assembled from (fragments.py), "not found" included. A lookup
whose fragments are all here costs neither a query nor a serialization.

Invalidation: every change an answer can show raises the ``generation`` counter in the
importer's own transaction (counters.GENERATION: a package imported, replaced or removed, a
checksum filled in, a build's Koji id set, ``darkserver recount``). The fast path's connections
read it at most once every CHECK_SECONDS (loopdb.py, with their package caches; the event loop's
also REFRESH_AFTER after the last read while lookups are answered from here) and report it
here with the time they asked; a change drops every entry. Entries are served only while the
last report is younger than CHECK_SECONDS, so **a change in the database shows in every answer
within CHECK_SECONDS**: a report at time t is older than every change it did not see. A fragment
is kept only when the rows it was made from were read under the generation seen last (the
``generation`` given to ``put``); one read under another (a report racing a read, a lagging
replica) is served once and not kept. The counter is only ever raised (counters.py): a
database put back to an older state while the web runs needs the web restarted.

Bounded by bytes: the fragments' lengths plus ENTRY_OVERHEAD each, least recently used first
out (``DARKSERVER_ANSWER_CACHE_MB``; 0: no cache). One instance per worker process, shared by
the event loop (single lookups) and the batch thread under one lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from darkserver.lookup.pkgcache import CHECK_SECONDS

# Bytes an entry costs beyond its fragment, rounded up: its key string (~90 B), the bytes
# object's header (33 B) and the ordered dict's slot and links; tracemalloc measured ~195 B
# per entry over 20,000 entries.
ENTRY_OVERHEAD = 256
# The fast path reads the generation again this long after the last read, ahead of CHECK_SECONDS,
# so that lookups answered from the cache never wait for that read (fastpath_asgi._refresh):
# under a saturated CPU one query in a thousand took MariaDB up to a second (docs/BENCHMARKS.md).
REFRESH_AFTER = CHECK_SECONDS / 2


class AnswerCache:
    """key -> fragment bytes (fragments.py says what keys and fragments are)."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.clock = clock  # the connections' package caches use the same one (tests: a fake)
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0  # bytes held, as counted against max_bytes
        self._lock = threading.Lock()
        self.generation: int | None = None
        self.checked_at = float("-inf")  # when the generation seen last was asked for

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def refresh_due(self) -> bool:
        """Whether the generation is to be read ahead of time (REFRESH_AFTER passed)."""
        return self.clock() - self.checked_at >= REFRESH_AFTER

    def fresh(self) -> bool:
        """Whether the generation was read less than CHECK_SECONDS ago (entries may be served)."""
        return self.clock() - self.checked_at < CHECK_SECONDS

    def seen(self, generation: int, asked_at: float) -> None:
        """A connection read ``generation``, having asked at ``asked_at``: a change drops every
        entry. A report older than the one held says nothing new and is ignored."""
        with self._lock:
            if asked_at <= self.checked_at:
                return
            if generation != self.generation:
                self._entries.clear()
                self.size = 0
                self.generation = generation
            self.checked_at = asked_at

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The fragment of each key, None for those not held (all of them when not fresh)."""
        if not self.fresh():
            return [None] * len(keys)
        entries = self._entries
        found: list[bytes | None] = []
        with self._lock:
            for key in keys:
                fragment = entries.get(key)
                if fragment is not None:
                    entries.move_to_end(key)
                found.append(fragment)
        return found

    def put_many(self, items: Sequence[tuple[str, bytes]], generation: int | None) -> None:
        """Keep fragments made from rows read under ``generation`` (None: under several, or
        unknown), when that is the generation seen last; the least recently used make room."""
        if not self.enabled or generation is None:
            return
        entries = self._entries
        with self._lock:
            if generation != self.generation:
                return
            for key, fragment in items:
                cost = len(fragment) + ENTRY_OVERHEAD
                if cost > self.max_bytes:
                    continue
                old = entries.pop(key, None)
                if old is not None:
                    self.size -= len(old) + ENTRY_OVERHEAD
                entries[key] = fragment
                self.size += cost
            while self.size > self.max_bytes:
                _key, dropped = entries.popitem(last=False)
                self.size -= len(dropped) + ENTRY_OVERHEAD

    def clear(self) -> None:
        """Forget every entry and the generation (as at start)."""
        with self._lock:
            self._entries.clear()
            self.size = 0
            self.generation = None
            self.checked_at = float("-inf")
