"""``darkserver-import backfill``: queue every COMPLETE build of a tag or since a date that is
not in the database yet.

Builds are walked in a stable order (build id for a tag; completion time, then build id, for
``--since``), in pages. After each page is published (with broker confirms) the position is
written to a state file, so an interrupted backfill started again with the same arguments
resumes after the last confirmed page. Re-queuing a build twice is harmless (the import is
idempotent); skipping one is not, so the state is only advanced after the publish is confirmed.

Run again after it finished, ``--since`` carries on after the newest build it saw (a cheap
periodic catch-up, e.g. from cron, for anything the push sources missed); ``--tag`` starts over.

"Not in the database yet" means: no build row for this instance and N-V-R. A build with some rpms
failed keeps its row; its message went to the dead-letter queue, which is where to look.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import koji

from darkcore import config
from darkimport.koji.source import BuildInfo, KojiSource
from darkimport.queue.messages import BuildRequest, Publisher, QueueConfig

PAGE = 500


@dataclass(slots=True)
class BackfillState:
    """Where a backfill stands: the last position whose page is confirmed in the queue."""

    key: str
    after_ts: float | None = None  # --since: completion timestamp of the last queued build
    after_id: int = 0  # last queued build id (tag: the cursor; since: tie-break at after_ts)
    queued: int = 0
    skipped: int = 0  # already in the database
    done: bool = False

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({
            "key": self.key, "after_ts": self.after_ts, "after_id": self.after_id,
            "queued": self.queued, "skipped": self.skipped, "done": self.done,
        }, indent=1))
        os.replace(tmp, path)  # atomic: an interruption leaves the old or the new state

    @classmethod
    def load(cls, path: Path, key: str) -> BackfillState:
        if not path.is_file():
            return cls(key)
        data = json.loads(path.read_text())
        if data.get("key") != key:
            raise ValueError(f"{path} belongs to another backfill ({data.get('key')!r})")
        return cls(key, data.get("after_ts"), int(data.get("after_id", 0)),
                    int(data.get("queued", 0)), int(data.get("skipped", 0)),
                    bool(data.get("done", False)))


def state_key(instance: str, tag: str | None, since: dt.datetime | None) -> str:
    what = f"tag={tag}" if tag else f"since={since.isoformat() if since else ''}"
    return f"{instance}:{what}"


def default_state_path(key: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", key)
    return config.data_dir() / "backfill" / f"{name}.json"


def parse_since(text: str) -> dt.datetime:
    """``2024-01-31`` or ``2024-01-31T12:00[:00][+00:00]``; UTC unless a zone is given."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--since wants a date like 2024-01-31, not {text!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _build_id(build: BuildInfo) -> int:
    return int(build.get("build_id") or build["id"])


def tag_pages(source: KojiSource, tag: str, state: BackfillState) -> Iterator[list[BuildInfo]]:
    builds = source.session.listTagged(tag, inherit=False)
    complete = koji.BUILD_STATES["COMPLETE"]
    todo = sorted((b for b in builds if b.get("state", complete) == complete
                   and _build_id(b) > state.after_id), key=_build_id)
    for start in range(0, len(todo), PAGE):
        yield todo[start: start + PAGE]


def since_pages(source: KojiSource, since: dt.datetime, state: BackfillState
                ) -> Iterator[list[BuildInfo]]:
    after = state.after_ts if state.after_ts is not None else since.timestamp()
    last_id = state.after_id
    while True:
        # completeAfter is strict; builds completing in the same second as the cursor are
        # re-read from a little before it and dropped by (ts, id).
        page: list[BuildInfo] = source.session.listBuilds(
            state=koji.BUILD_STATES["COMPLETE"], completeAfter=after - 1,
            queryOpts={"order": "completion_ts", "limit": PAGE * 2},
        )
        fresh = sorted(
            (b for b in page if (float(b["completion_ts"]), _build_id(b)) > (after, last_id)),
            key=lambda b: (float(b["completion_ts"]), _build_id(b)),
        )[:PAGE]
        if not fresh:
            return
        yield fresh
        after, last_id = float(fresh[-1]["completion_ts"]), _build_id(fresh[-1])


def run_backfill(
    source: KojiSource,
    cfg: QueueConfig,
    state_path: Path,
    tag: str | None = None,
    since: dt.datetime | None = None,
    imported: Callable[[str, list[BuildInfo]], set[int]] | None = None,
    dry_run: bool = False,
    progress: Callable[[BackfillState], None] | None = None,
) -> BackfillState:
    """Queue the builds; returns the final state (also saved in ``state_path``)."""
    if (tag is None) == (since is None):
        raise ValueError("give exactly one of --tag and --since")
    instance = source.instance.name
    key = state_key(instance, tag, since)
    state = BackfillState.load(state_path, key)
    if state.done:
        # Run again: --since carries on after the newest build it saw (a cheap periodic
        # catch-up); --tag starts over, since builds can be tagged in at any time, and the
        # database check skips what is imported.
        state = (BackfillState(key, state.after_ts, state.after_id) if since is not None
                 else BackfillState(key))
    already = imported or builds_in_database
    pages = tag_pages(source, tag, state) if tag else since_pages(source, since, state)  # type: ignore[arg-type]
    publisher = None if dry_run else Publisher(cfg)
    try:
        for page in pages:
            have = already(instance, page)
            for build in page:
                if _build_id(build) in have:
                    state.skipped += 1
                    continue
                if publisher is not None:
                    publisher.publish(BuildRequest(instance, _build_id(build), "backfill"))
                state.queued += 1
            last = page[-1]
            state.after_id = _build_id(last)
            if since is not None:
                state.after_ts = float(last["completion_ts"])
            if not dry_run:
                state.save(state_path)
            if progress is not None:
                progress(state)
        state.done = True
        if not dry_run:
            state.save(state_path)
    finally:
        if publisher is not None:
            publisher.close()
    return state


def builds_in_database(instance: str, page: list[BuildInfo]) -> set[int]:
    """Koji build ids of ``page`` that already have a build row (by instance + N-V-R)."""
    from darkimport import djangosetup

    djangosetup.setup()
    from darkimport.run.store import builds_known

    wanted = {(str(b.get("name") or b.get("package_name")), str(b["version"]),
               str(b["release"])): _build_id(b) for b in page}
    return {wanted[row] for row in builds_known(instance, set(wanted))}


def describe(state: BackfillState) -> dict[str, Any]:
    return {"key": state.key, "queued": state.queued, "skipped": state.skipped,
            "done": state.done, "after_id": state.after_id, "after_ts": state.after_ts}
