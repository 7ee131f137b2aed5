"""The package and build columns of lookup answers, cached per fast-path connection.

On MariaDB the lookup join (ELF row + package + build) costs mariadbd about twice the ELF
table alone per query (issue 12: 159 against 64 us at one id per query), and a worker answers
the same few thousand packages over and over. So the fast path (loopdb.py) reads only the ELF
columns per lookup (queries.ELF_FIELDS, package_id last) and takes the package and build
columns (queries.PACKAGE_PART_FIELDS) from this cache, reading those it lacks with one query;
the row put together is exactly the joined query's row, so the answer's bytes are the same.

Invalidation: the importer raises the ``generation`` counter (counters.GENERATION) in the same
transaction as every change of a field an answer shows (a package replaced or removed, a
checksum filled in, a build's Koji id set, a package imported; ``darkserver recount`` raises
it too). The cache reads the counter at most once every CHECK_SECONDS, counted from when it
asked, and starts over when it changed: **an answer may show package or build fields up to
CHECK_SECONDS older than the database**. New packages get new ids, so new rows are never missed
here (the answer cache, answercache.py, needs their generation); an ELF row whose package
vanished between the two queries makes loopdb read again, cache cleared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

CHECK_SECONDS = 1.0  # the staleness bound of package and build fields (docstring)
MAX_PACKAGES = 50_000  # entries kept per connection (~1 KB each); the oldest go first

Row = Sequence[Any]


class PackageCache:
    """package_id -> its PACKAGE_PART_FIELDS values, for one connection (one thread)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # a test's fake clock replaces it
        self.parts: dict[int, tuple[Any, ...]] = {}
        self.generation: int | None = None
        self.checked_at = float("-inf")
        self.reads = 0  # package queries run (a test counts them)

    def clear(self) -> None:
        """Forget everything, the generation too (a new connection: maybe another database)."""
        self.parts.clear()
        self.generation = None
        self.checked_at = float("-inf")

    def due(self) -> bool:
        """Whether the generation is to be read again (every CHECK_SECONDS at most)."""
        return self.clock() - self.checked_at >= CHECK_SECONDS

    def seen(self, generation: int, asked_at: float | None = None) -> None:
        """The generation just read, asked for at ``asked_at`` (default: now): start over when
        the importer changed package fields. The next check is due CHECK_SECONDS after the
        asking, so every change is seen within CHECK_SECONDS (answercache.py relies on it)."""
        self.checked_at = self.clock() if asked_at is None else asked_at
        if generation != self.generation:
            self.parts.clear()
            self.generation = generation

    def missing(self, elf_rows: Sequence[Row]) -> list[int]:
        """The package ids of ``elf_rows`` (package_id last) not cached."""
        parts = self.parts
        return list({row[-1] for row in elf_rows if row[-1] not in parts})

    def add(self, found: Sequence[Row], keep: Sequence[Row]) -> None:
        """Cache the package parts read (rows of id then the part), making room by dropping
        the oldest entries other than those ``keep`` (the ELF rows being answered) needs."""
        self.reads += 1
        parts = self.parts
        overflow = len(parts) + len(found) - MAX_PACKAGES
        if overflow > 0:  # dicts keep insertion order
            needed = {row[-1] for row in keep}
            for key in [k for k in parts if k not in needed][:overflow]:
                del parts[key]
        for row in found:
            parts[row[0]] = tuple(row[1:])

    def join(self, elf_rows: Sequence[Row]) -> tuple[list[Row], bool]:
        """The full rows (ELF columns then package part) of ``elf_rows``; and whether every
        row's package was found (False: one vanished since the ELF rows were read)."""
        parts = self.parts
        rows: list[Row] = []
        complete = True
        for row in elf_rows:
            part = parts.get(row[-1])
            if part is None:
                complete = False
            else:
                rows.append((*row, *part))
        return rows, complete
