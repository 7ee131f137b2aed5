"""``darkserver-import backfill``: queue every COMPLETE build of a tag or since a date that is
not in the database yet.

Builds are walked in a stable order (build id for a tag; completion time, then build id, for
``--since``), in pages. After each page is published (with broker confirms) the position is
written to a state file, so an interrupted backfill started again with the same arguments
resumes after the last confirmed page. Re-queuing a build twice is harmless (the import is
idempotent); skipping one is not, so the state is only advanced after the publish is confirmed.

Run again after it finished, ``--since`` carries on after the newest build it saw (a cheap
periodic catch-up, e.g. from cron, for anything the push sources missed); ``--tag`` starts over.

Draft builds are not queued (the worker would skip them). A draft promoted later keeps its old
completion time, behind a ``--since`` cursor, so ``--since`` also walks the builds promoted
after a second cursor: with the hub's ``listBuilds(promotedAfter=)`` where it has it (newer than
Koji 1.35), else every promoted build in promotion order (drafts are rare; never-promoted
builds sort last and end the walk).

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
    skipped: int = 0  # already in the database, or a draft
    done: bool = False
    promoted_ts: float | None = None  # --since: promotion timestamp of the last queued build
    promoted_id: int = 0

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({
            "key": self.key, "after_ts": self.after_ts, "after_id": self.after_id,
            "queued": self.queued, "skipped": self.skipped, "done": self.done,
            "promoted_ts": self.promoted_ts, "promoted_id": self.promoted_id,
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
                    bool(data.get("done", False)), data.get("promoted_ts"),
                    int(data.get("promoted_id", 0)))


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


def _promotion(build: BuildInfo) -> tuple[float, int]:
    return float(build["promotion_ts"]), _build_id(build)


def promoted_pages(source: KojiSource, since: dt.datetime, state: BackfillState
                   ) -> Iterator[list[BuildInfo]]:
    """Builds promoted from draft after the promotion cursor, in promotion order."""
    after = state.promoted_ts if state.promoted_ts is not None else since.timestamp()
    last_id = state.promoted_id
    complete = koji.BUILD_STATES["COMPLETE"]
    opts = {"order": "promotion_ts", "limit": PAGE}

    def fresh(page: list[BuildInfo]) -> list[BuildInfo]:
        return sorted((b for b in page if b.get("promotion_ts") is not None
                       and _promotion(b) > (after, last_id)), key=_promotion)

    # As in since_pages: re-read the cursor's second, drop what is not after it.
    window = {"order": "promotion_ts", "limit": PAGE * 2}
    try:
        page: list[BuildInfo] = source.session.listBuilds(
            state=complete, draft=False, promotedAfter=after - 1, queryOpts=window)
    except koji.ParameterError:
        offset = 0
        while True:
            page = source.session.listBuilds(state=complete, draft=False,
                                             queryOpts=opts | {"offset": offset})
            offset += len(page)
            found = fresh(page)
            if found:
                yield found
                after, last_id = _promotion(found[-1])
            if len(page) < PAGE or page[-1].get("promotion_ts") is None:
                return
    while found := fresh(page)[:PAGE]:
        yield found
        after, last_id = _promotion(found[-1])
        page = source.session.listBuilds(state=complete, draft=False,
                                         promotedAfter=after - 1, queryOpts=window)


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
        state = (BackfillState(key, state.after_ts, state.after_id,
                               promoted_ts=state.promoted_ts, promoted_id=state.promoted_id)
                 if since is not None else BackfillState(key))
    already = imported or builds_in_database
    publisher = None if dry_run else Publisher(cfg)
    sent: set[int] = set()  # a build both completed and promoted after --since: queued once

    def queue_page(page: list[BuildInfo]) -> None:
        have = already(instance, page)
        for build in page:
            build_id = _build_id(build)
            if build_id in have or build_id in sent or build.get("draft"):
                state.skipped += 1
                continue
            if publisher is not None:
                publisher.publish(BuildRequest(instance, build_id, "backfill"))
            sent.add(build_id)
            state.queued += 1

    def saved() -> None:
        if not dry_run:
            state.save(state_path)
        if progress is not None:
            progress(state)

    try:
        if tag is not None:
            for page in tag_pages(source, tag, state):
                queue_page(page)
                state.after_id = _build_id(page[-1])
                saved()
        else:
            assert since is not None
            for page in since_pages(source, since, state):
                queue_page(page)
                state.after_id = _build_id(page[-1])
                state.after_ts = float(page[-1]["completion_ts"])
                saved()
            for page in promoted_pages(source, since, state):
                queue_page(page)
                state.promoted_ts, state.promoted_id = _promotion(page[-1])
                saved()
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
            "done": state.done, "after_id": state.after_id, "after_ts": state.after_ts,
            "promoted_ts": state.promoted_ts}
