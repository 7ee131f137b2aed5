"""The Koji hub plugin's spool, sent by ``darkserver-import enqueue --spool DIR``.

The format is written by ``conf/koji-hub-plugin/darkserver_plugin.py`` (which cannot import
Darkserver, so both sides follow this description): a directory with one JSON file per build,
``INSTANCE.BUILD.json`` = ``{"instance": str or null, "build": int, "nvr": str, "spooled":
unix time, "reason": str}``. ``instance`` is null when the plugin had no usable configuration;
such builds need ``--instance``. Names starting with ``.`` are the writers' temporary files, the
broker back-off marker and the flush lock. The plugin's older spool, one file of JSON lines, is
read too.

A file is removed only after the broker confirmed its message, under the same flush lock the
hub processes take, so an operator's flush and a hub's flush do not send the same builds twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from darkimport.queue.messages import BuildRequest, Publisher, QueueConfig

FLUSH_LOCK = ".flush.lock"
DOWN_MARKER = ".broker-down"


class SpoolError(Exception):
    """The spool cannot be read at all."""


@dataclass(slots=True)
class SpoolResult:
    sent: list[BuildRequest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # entries left in the spool, and why


@dataclass(frozen=True, slots=True)
class _Entry:
    path: Path
    request: BuildRequest | None
    problem: str = ""


def _parse(data: object, where: str, instance: str | None) -> tuple[BuildRequest | None, str]:
    if not isinstance(data, dict):
        return None, f"{where}: not a JSON object"
    build = data.get("build")
    if isinstance(build, bool) or not isinstance(build, int) or build <= 0:
        return None, f"{where}: 'build' is not a Koji build id"
    name = data.get("instance") or instance
    if not isinstance(name, str) or not name:
        return None, f"{where}: build {build} was spooled without an instance: give --instance"
    return BuildRequest(name, build, "hub"), ""


def _entries(spool: Path, instance: str | None) -> Iterator[_Entry]:
    try:
        paths = sorted((p for p in spool.iterdir()
                        if p.name.endswith(".json") and not p.name.startswith(".")),
                       key=lambda p: (p.stat().st_mtime, p.name))
    except OSError as exc:
        raise SpoolError(f"{spool}: {exc.strerror or exc}") from exc
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # sent by a hub process meanwhile
        except (OSError, ValueError) as exc:
            yield _Entry(path, None, f"{path.name}: unreadable: {exc}")
            continue
        request, problem = _parse(data, path.name, instance)
        yield _Entry(path, request, problem)


@contextlib.contextmanager
def _flush_lock(spool: Path) -> Iterator[None]:
    with open(spool / FLUSH_LOCK, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield


def flush_spool(spool: Path, cfg: QueueConfig, instance: str | None = None) -> SpoolResult:
    """Publish every spooled build (each confirmed), removing what was sent."""
    if spool.is_file():
        return _flush_lines(spool, cfg, instance)
    if not spool.is_dir():
        raise SpoolError(f"{spool}: no such directory")
    result = SpoolResult()
    with _flush_lock(spool):
        entries = list(_entries(spool, instance))
        result.problems = [e.problem for e in entries if e.request is None]
        todo = [e for e in entries if e.request is not None]
        if todo:
            with Publisher(cfg) as pub:
                for entry in todo:
                    assert entry.request is not None
                    pub.publish(entry.request)
                    with contextlib.suppress(FileNotFoundError):
                        entry.path.unlink()
                    result.sent.append(entry.request)
        with contextlib.suppress(FileNotFoundError):
            (spool / DOWN_MARKER).unlink()  # the broker works: the hubs need not back off
    return result


def _flush_lines(path: Path, cfg: QueueConfig, instance: str | None) -> SpoolResult:
    """The old spool: one JSON object per line; lines that cannot be sent are kept."""
    result = SpoolResult()
    keep: list[str] = []
    todo: list[BuildRequest] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            data = None
            problem = f"{path.name} line {number}: not JSON: {exc}"
        else:
            request, problem = _parse(data, f"{path.name} line {number}", instance)
            if request is not None:
                todo.append(request)
                continue
        keep.append(line)
        result.problems.append(problem)
    if todo:
        with Publisher(cfg) as pub:
            for request in todo:
                pub.publish(request)
                result.sent.append(request)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
    os.replace(tmp, path)
    return result
