"""Backfill: every COMPLETE build of a tag / since a date that is not imported yet goes on the
real queue, in pages, and an interrupted run resumes after its last confirmed page."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from darkcore.settings import TEST_AMQP_URL
from darkimport.koji import backfill
from darkimport.koji.conf import KojiInstance
from darkimport.koji.source import KojiSource, RetryPolicy
from darkimport.queue.messages import Publisher, QueueConfig
from darkserver.lookup.models import Build
from tests.amqp import take_all
from tests.kojihub import KojiHub, cached_rpms

AMQP = TEST_AMQP_URL.get()
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue() -> Iterator[QueueConfig]:
    cfg = QueueConfig(url=AMQP, queue=f"darkserver.test.{uuid.uuid4().hex[:12]}")
    yield cfg
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    for name in (cfg.queue, cfg.retry_queue, cfg.dead_queue):
        channel.queue_delete(name)
    connection.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[KojiHub]:
    hub = KojiHub(tmp_path / "koji")
    # Six builds an hour apart in tag f40; the third FAILED. All share one set of rpm files:
    # backfill only reads build metadata.
    rpms = cached_rpms("bf")
    for i in range(6):
        info = hub.add_build(rpms, state="FAILED" if i == 2 else "COMPLETE",
                             completion=T0 + dt.timedelta(hours=i), tags=("f40",))
        info.update(nvr=f"bf-1.0-{i + 1}.fc40", release=f"{i + 1}.fc40")
    with hub.serve():
        yield hub


def queued(cfg: QueueConfig) -> list[object]:
    return [json.loads(body)["build"] for _props, body in take_all(cfg.queue, AMQP)]


def source(hub: KojiHub) -> KojiSource:
    return KojiSource(KojiInstance("test", hub.hub_url, hub.topurl), RetryPolicy(attempts=1))


def test_an_interrupted_tag_backfill_resumes_after_its_last_confirmed_page(
        hub: KojiHub, queue: QueueConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(hub.builds)  # 1001..1006; 1003 FAILED
    Build.objects.create(instance="test", name="bf", version="1.0", release="2.fc40")
    monkeypatch.setattr(backfill, "PAGE", 2)
    state_file = tmp_path / "state.json"
    real_publish = Publisher.publish
    calls = {"n": 0}

    def dies_on_the_third(self: Publisher, request: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("the backfill was interrupted")
        real_publish(self, request)  # type: ignore[arg-type]

    monkeypatch.setattr(Publisher, "publish", dies_on_the_third)
    with pytest.raises(ConnectionError):
        backfill.run_backfill(source(hub), queue, state_file, tag="f40")
    # Pages: [1001, 1002 (imported)], [1004, 1005], [1006]. Died publishing 1005: the state
    # stands after the first page.
    saved = json.loads(state_file.read_text())
    assert (saved["after_id"], saved["queued"], saved["skipped"], saved["done"]) == (
        ids[1], 1, 1, False)
    monkeypatch.setattr(Publisher, "publish", real_publish)
    state = backfill.run_backfill(source(hub), queue, state_file, tag="f40")
    assert (state.done, state.after_id, state.queued, state.skipped) == (True, ids[5], 4, 1)
    # At least once: 1004 went out before the interruption and again after; nothing is missing.
    assert queued(queue) == [ids[0], ids[3], ids[3], ids[4], ids[5]]


def test_since_a_date_queues_the_builds_completed_after_it(
        hub: KojiHub, queue: QueueConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(hub.builds)
    monkeypatch.setattr(backfill, "PAGE", 1)
    since = backfill.parse_since("2024-03-01T02:30")
    state = backfill.run_backfill(source(hub), queue, tmp_path / "s.json", since=since)
    assert queued(queue) == [ids[3], ids[4], ids[5]]
    assert state.done and state.after_ts == (T0 + dt.timedelta(hours=5)).timestamp()
    # Run again later: nothing new completed, nothing queued.
    again = backfill.run_backfill(source(hub), queue, tmp_path / "s.json", since=since)
    assert (again.queued, queued(queue)) == (0, [])
    # A state file of another backfill is refused rather than misread.
    with pytest.raises(ValueError, match="belongs to another backfill"):
        backfill.run_backfill(source(hub), queue, tmp_path / "s.json", tag="f40")


@pytest.mark.parametrize("hub_filters", [False, True], ids=["koji-1.35", "promotedAfter"])
def test_since_also_finds_drafts_promoted_after_its_cursor(
        hub: KojiHub, queue: QueueConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        hub_filters: bool) -> None:
    hub.promoted_after_filter = hub_filters
    ids = sorted(hub.builds)
    rpms = cached_rpms("bf")
    early = hub.add_build(rpms, completion=T0 + dt.timedelta(hours=1, minutes=30), draft=True)
    late = hub.add_build(rpms, completion=T0 + dt.timedelta(hours=4, minutes=30), draft=True)
    monkeypatch.setattr(backfill, "PAGE", 1)
    since = backfill.parse_since("2024-03-01T02:30")
    state_file = tmp_path / "s.json"
    first = backfill.run_backfill(source(hub), queue, state_file, since=since)
    # Completed after --since and not drafts; the late draft is passed over, not queued.
    assert queued(queue) == [ids[3], ids[4], ids[5]]
    assert (first.queued, first.skipped, first.promoted_ts) == (3, 1, None)
    # Both drafts are promoted later; the early one completed before --since even began.
    hub.promote(early["id"], T0 + dt.timedelta(hours=10))
    hub.promote(late["id"], T0 + dt.timedelta(hours=11))
    again = backfill.run_backfill(source(hub), queue, state_file, since=since)
    assert queued(queue) == [early["id"], late["id"]]
    assert again.promoted_ts == (T0 + dt.timedelta(hours=11)).timestamp()
    # And the cursor holds: nothing twice.
    third = backfill.run_backfill(source(hub), queue, state_file, since=since)
    assert (third.queued, queued(queue)) == (0, [])
    assert ("listBuilds" in hub.calls)


def test_the_backfill_and_enqueue_commands(hub: KojiHub, queue: QueueConfig, tmp_path: Path
                                           ) -> None:
    from tests.helpers import BIN, run_cmd
    from tests.kojihub import instance_json

    env = {"DARKSERVER_KOJI_CONF": str(instance_json(tmp_path / "k.json", hub)),
           "DARKSERVER_DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3",
           "DARKSERVER_AMQP_URL": AMQP, "DARKSERVER_QUEUE": queue.queue}
    state = tmp_path / "state.json"
    out = run_cmd([str(BIN / "darkserver-import"), "backfill", "--instance", "test", "--since",
                   "2024-03-01T03:30", "--state-file", str(state)], env=env)
    assert json.loads(out.stdout) == {
        "key": "test:since=2024-03-01T03:30:00+00:00", "queued": 2, "skipped": 0,
        "done": True, "after_id": max(hub.builds),
        "after_ts": (T0 + dt.timedelta(hours=5)).timestamp(), "promoted_ts": None,
        "state_file": str(state)}
    run_cmd([str(BIN / "darkserver-import"), "enqueue", "--instance", "test", "bf-1.0-1.fc40",
             "1002"], env=env)
    assert queued(queue) == [1005, 1006, "bf-1.0-1.fc40", 1002]
    bad = run_cmd([str(BIN / "darkserver-import"), "backfill", "--instance", "nosuch", "--tag",
                   "f40"], env=env, check=False)
    assert bad.returncode == 2 and "unknown Koji instance 'nosuch'" in bad.stderr
