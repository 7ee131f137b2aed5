"""What ``darkclient serve`` keeps: answered files on disk, read packages in memory.

``Cache``: each answer under ROOT/HEX/NAME with its headers in NAME.json, bounded in bytes and
evicted least recently used first (a hit touches the file's mtime, the LRU clock). The size is
counted as files are added, not by walking the directory on every answer; the walk happens
once at start and when the bound is crossed. ``put_behind`` writes on a thread of its own
after the answer has gone out (a debugger waits for each answer before it asks the next one;
the write, ~1.5 ms, need not be part of that wait): until written, the answer is kept in
memory and ``get`` finds it there.

``Packages``: the files of packages read once (every ELF member and every source file, by
path), so that the next build-id of the same package costs no download. Bounded in bytes too,
whole packages dropped least recently used first.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from darkclient.debugdir import Held


@dataclass(frozen=True, slots=True)
class Hit:
    """A cached answer: its headers, and its bytes while they wait to be written (else the
    file holding them)."""

    headers: dict[str, str]
    path: Path
    data: bytes | None = None


class Cache:
    """Answered files under ROOT/HEX/NAME (+ NAME.json with headers), LRU by mtime."""

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        self._total = sum(size for _, size, _ in self._files())
        # Answers not yet on disk, by (build-id, name); one writer, so writes keep their order.
        self._pending: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="darkclient-cache")

    @property
    def total(self) -> int:
        """Bytes of answered files, as counted."""
        return self._total

    def path(self, build_id: str, name: str) -> Path:
        return self.root / build_id / name

    def get(self, build_id: str, name: str) -> Hit | None:
        path = self.path(build_id, name)
        with self._lock:
            pending = self._pending.get((build_id, name))
        if pending is not None:
            return Hit(dict(pending[1]), path, pending[0])
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            os.utime(path)  # the LRU clock
        except (OSError, ValueError):
            return None
        return Hit({str(k): str(v) for k, v in meta.items()}, path)

    def put_behind(self, build_id: str, name: str, data: bytes,
                   headers: dict[str, str]) -> None:
        """Store an answer after the caller has sent it: ``get`` has it at once (from memory
        until written), the file follows on the writer thread."""
        key = (build_id, name)
        entry = (data, dict(headers))
        with self._lock:
            self._pending[key] = entry
        try:
            self._writer.submit(self._write, key, entry)
        except RuntimeError:  # closing: a request still being answered writes its own
            self._write(key, entry)

    def _write(self, key: tuple[str, str], entry: tuple[bytes, dict[str, str]]) -> None:
        try:
            self.put(*key, *entry)
        except OSError:
            pass  # a cache that cannot be written costs a later fetch, not this answer
        finally:
            with self._lock:
                if self._pending.get(key) is entry:
                    del self._pending[key]

    def flush(self) -> None:
        """Wait until every answer given to ``put_behind`` so far is on disk."""
        self._writer.submit(lambda: None).result()

    def close(self) -> None:
        self.flush()
        self._writer.shutdown()

    def put(self, build_id: str, name: str, data: bytes, headers: dict[str, str]) -> Path:
        """Store an answer (written beside, then renamed: a reader never sees half a file)."""
        dest = self.path(build_id, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".darkclient-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            with contextlib.suppress(OSError):
                old = dest.stat().st_size
                with self._lock:
                    self._total -= old
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        dest.with_suffix(".json").write_text(json.dumps(headers))
        with self._lock:
            self._total += len(data)
            over = self._total > self.limit
        if over:
            self.evict(keep=dest)
        return dest

    def _files(self) -> list[tuple[float, int, Path]]:
        files = []
        for d in self.root.iterdir():
            if not d.is_dir():
                continue
            for f in d.iterdir():
                if f.suffix != ".json" and not f.name.startswith("."):
                    with contextlib.suppress(OSError):
                        st = f.stat()
                        files.append((st.st_mtime, st.st_size, f))
        return files

    def evict(self, keep: Path | None = None) -> None:
        with self._lock:
            files = self._files()
            total = sum(size for _, size, _ in files)
            for _mtime, size, f in sorted(files, key=lambda x: x[0]):
                if total <= self.limit:
                    break
                if f == keep:
                    continue
                with contextlib.suppress(OSError):
                    f.with_suffix(".json").unlink()
                with contextlib.suppress(OSError):
                    f.unlink()
                total -= size
            for d in self.root.iterdir():
                with contextlib.suppress(OSError):
                    d.rmdir()  # only succeeds when empty
            self._total = total


class Contents:
    """The files read from one package, by normalised install path."""

    def __init__(self, files: list[Held], archive: str) -> None:
        self.archive = archive  # the URL the package came from
        self.size = sum(len(h.data) for h in files)
        self.by_path: dict[str, Held] = {}
        for h in files:
            for p in h.paths:
                self.by_path.setdefault(p, h)


class Packages:
    """Contents of packages read, by download URL, bounded in bytes (LRU)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._held: OrderedDict[str, Contents] = OrderedDict()
        self._total = 0

    def get(self, key: str) -> Contents | None:
        with self._lock:
            got = self._held.get(key)
            if got is not None:
                self._held.move_to_end(key)
            return got

    def put(self, key: str, contents: Contents) -> None:
        with self._lock:
            old = self._held.pop(key, None)
            if old is not None:
                self._total -= old.size
            self._held[key] = contents
            self._total += contents.size
            while self._total > self.limit and len(self._held) > 1:
                _, dropped = self._held.popitem(last=False)
                self._total -= dropped.size
