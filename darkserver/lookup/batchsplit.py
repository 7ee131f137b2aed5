"""A large batch read over two connections at once: the batch thread's and a helper's.

A batch of 1,000 ids is two queries of 500 (queries.CHUNK), each of which mariadbd runs on one
core while the worker waits; the machine has more. So each large query is cut in two halves:
the batch thread reads one over its own connection while a helper thread reads the other over
a third connection of the worker's, and the rows are put together. The answer is built from
the rows as before (answers.batch), so its bytes do not change.

Below SPLIT_MIN distinct ids a hop to another thread costs more than it saves. When the
helper's half fails (its connection dropped, or none can be opened), the batch thread reads
that half itself: the helper can slow a batch down, never fail it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from darkserver.lookup import queries
from darkserver.lookup.loopdb import LoopConnection

log = logging.getLogger(__name__)

SPLIT_MIN = 128  # distinct ids in one query from which it is read in two halves


class BatchSplit:
    """queries.Fetch for the batch thread: ``main`` is its connection; the helper's is
    opened and used on a thread of its own."""

    def __init__(self, main: LoopConnection) -> None:
        self.main = main
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="darkserver-batch-helper")
        self.helper = LoopConnection(executor=self.executor)
        self.splits = 0  # queries read in two halves (a test counts them)
        # The generation the last fetch's rows were read under, None when its two halves were
        # read under different ones (loopdb.LoopConnection.generation; answercache.py).
        self.generation: int | None = None

    def fetch(self, size: int, params: dict[str, bytes]) -> Sequence[Sequence[Any]]:
        ids = list(dict.fromkeys(params.values()))
        if len(ids) < SPLIT_MIN:
            rows = self.main.fetch(size, params)
            self.generation = self.main.generation
            return rows
        half = len(ids) // 2
        theirs = self.executor.submit(self._helper_fetch, ids[half:])
        rows = list(_fetch(self.main, ids[:half]))
        generation = self.main.generation
        try:
            helper_rows, helper_generation = theirs.result()
            rows.extend(helper_rows)
            if helper_generation != generation:
                generation = None
        except Exception as exc:  # the helper's connection: read the half here instead
            log.info("batch helper failed (%r); the batch thread reads its half", exc)
            rows.extend(_fetch(self.main, ids[half:]))
            if self.main.generation != generation:
                generation = None
        self.generation = generation
        self.splits += 1
        return rows

    def _helper_fetch(self, ids: list[bytes]) -> tuple[Sequence[Sequence[Any]], int | None]:
        helper = self.helper
        # It reads from the database the batch connection reads (replicas.py may switch it).
        if helper.is_open and helper.alias != self.main.alias:
            helper.discard()
        if not helper.open_blocking():
            raise RuntimeError("the batch helper's connection cannot be opened")
        return _fetch(helper, ids), helper.generation

    def close(self) -> None:
        """Close the helper's connection on its thread and end the thread."""
        self.executor.submit(self.helper.discard).result()
        self.executor.shutdown()


def _fetch(db: LoopConnection, ids: list[bytes]) -> Sequence[Sequence[Any]]:
    size, params = queries.padded(ids)
    return db.fetch(size, params)
