"""The push pipeline with real parts: RabbitMQ on 127.0.0.1:5672, worker processes of the real
``darkserver-import worker`` command, the test Koji hub over HTTP, rpms built with rpmbuild,
and an SQLite database file the workers share."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest

from darkcore.settings import TEST_AMQP_URL
from darkimport.queue.messages import ATTEMPTS, REASON, BuildRequest, QueueConfig, counts, enqueue
from darkserver.lookup import paths
from tests import mariadb
from tests.helpers import BIN, wait_for
from tests.kojihub import KojiHub, cached_rpms, instance_json
from tests.oracle import expected_rows

AMQP = TEST_AMQP_URL.get()
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Pipeline:
    hub: KojiHub
    cfg: QueueConfig
    env: dict[str, str]
    db: Path | str  # an SQLite file, or a MariaDB database name
    workers: list[subprocess.Popen[str]]

    def worker(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [str(BIN / "darkserver-import"), "worker", "--amqp-url", self.cfg.url, "--queue",
             self.cfg.queue, "--max-attempts", str(self.cfg.max_attempts), "--retry-delay",
             str(self.cfg.retry_delay_ms / 1000), "-v", *args],
            env=os.environ | self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=ROOT, start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[str]) -> str:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # Say what is still running before the fixture kills it.
            ps = subprocess.run(["ps", "-o", "pid,ppid,stat,wchan:24,args", "-g", str(proc.pid)],
                                capture_output=True, text=True).stdout
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise AssertionError(f"worker {proc.pid} still running 60 s after SIGTERM:\n{ps}"
                                 f"--- its output:\n{out}") from None
        return out

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        if isinstance(self.db, Path):
            with sqlite3.connect(self.db, timeout=30) as conn:
                return list(conn.execute(sql, params))
        conn = mariadb.connect(self.db)
        try:
            cursor = conn.cursor()
            cursor.execute(sql.replace("?", "%s"), params)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            conn.close()

    def rows(self) -> set[tuple[str, str, str]]:
        return {
            (bytes(b).hex(), paths.expand(str(p), bytes(b)), str(n))  # type: ignore[arg-type]
            for b, p, n in self.query(
                "SELECT e.build_id, t.path, p.nvra FROM lookup_elffile e "
                "JOIN lookup_path t ON t.id = e.path_id "
                "JOIN lookup_package p ON p.id = e.package_id")
        }

    def packages(self) -> list[str]:
        return sorted(str(n) for (n,) in self.query("SELECT nvra FROM lookup_package"))

    def counts(self) -> dict[str, int]:
        return counts(self.cfg)

    def dead_letters(self) -> list[tuple[dict[str, object], bytes]]:
        connection = pika.BlockingConnection(pika.URLParameters(self.cfg.url))
        found = []
        try:
            channel = connection.channel()
            while True:
                method, props, body = channel.basic_get(self.cfg.dead_queue, auto_ack=True)
                if method is None:
                    break
                found.append((dict(props.headers or {}), body))
        finally:
            connection.close()
        return found


def expected_for(rpms: list[Path]) -> set[tuple[str, str, str]]:
    return {(r.build_id, r.path, r.nvra) for rpm in rpms for r in expected_rows(rpm)}


@pytest.fixture(params=["sqlite"])
def pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pipeline]:
    """Workers as subprocesses sharing one database: an SQLite file, or with
    ``@pytest.mark.parametrize("pipeline", ["mariadb"], indirect=True)`` a scratch database on
    the MariaDB server."""
    with contextlib.ExitStack() as stack:
        if request.param == "mariadb":
            db: Path | str = stack.enter_context(mariadb.scratch_database("ds_queue"))
            url = mariadb.url(str(db))
        else:
            db = tmp_path / "darkserver.sqlite3"
            url = f"sqlite:///{db}"
        yield from _pipeline(tmp_path, db, url)


def _pipeline(tmp_path: Path, db: Path | str, url: str) -> Iterator[Pipeline]:
    hub = KojiHub(tmp_path / "koji")
    cfg = QueueConfig(url=AMQP, queue=f"darkserver.test.{uuid.uuid4().hex[:12]}",
                      max_attempts=2, retry_delay_ms=200)
    with hub.serve():
        env = {
            "DARKSERVER_DATABASE_URL": url,
            "DARKSERVER_KOJI_CONF": str(instance_json(tmp_path / "koji.json", hub)),
        }
        # The schema first, once: two workers starting on an empty database would both migrate.
        subprocess.run(
            [sys.executable, "-c", "from darkimport import djangosetup; djangosetup.setup(); "
             "from darkimport.run.store import ensure_schema; ensure_schema()"],
            env=os.environ | env, check=True, cwd=ROOT,
        )
        line = Pipeline(hub, cfg, env, db, [])
        try:
            yield line
        finally:
            for proc in line.workers:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                if proc.stdout is not None and not proc.stdout.closed:
                    proc.communicate()
            connection = pika.BlockingConnection(pika.URLParameters(AMQP))
            channel = connection.channel()
            for name in (cfg.queue, cfg.retry_queue, cfg.dead_queue):
                channel.queue_delete(name)
            connection.close()


@pytest.mark.parametrize("pipeline", ["sqlite", "mariadb"], indirect=True)
def test_a_worker_killed_mid_build_loses_nothing_and_duplicates_nothing(
        pipeline: Pipeline) -> None:
    rpms = cached_rpms("killme")
    build = pipeline.hub.add_build(rpms)
    main, debuginfo, libs = sorted(pipeline.hub.listBuildRPMs(build["id"]),
                                   key=lambda r: r["name"])
    release = pipeline.hub.stall(debuginfo["id"])  # the worker will hang in this download
    enqueue([BuildRequest("test", build["id"], "test")], pipeline.cfg)
    first = pipeline.worker()
    wait_for("the first rpm committed and the second being fetched", lambda: (
        pipeline.packages() == ["killme-1.0-1.fc40.x86_64"]
        and pipeline.hub.url_path(debuginfo["id"]) in pipeline.hub.requests))
    main_row = pipeline.query("SELECT id, imported_at FROM lookup_package")
    os.killpg(first.pid, signal.SIGKILL)  # no goodbye: the broker notices the dead connection
    first.communicate()
    release.set()
    second = pipeline.worker()
    wait_for("all three rpms", lambda: len(pipeline.packages()) == 3)
    wait_for("the queue to drain", lambda: pipeline.counts()[pipeline.cfg.queue] == 0)
    out = pipeline.stop(second)
    assert pipeline.packages() == sorted(f"{r['nvr']}.{r['arch']}" for r in (main, debuginfo, libs))
    assert pipeline.rows() == expected_for(rpms)
    # The rpm committed before the kill was kept as it was, not imported or downloaded again.
    assert pipeline.query("SELECT id, imported_at FROM lookup_package WHERE nvra = ?",
                          "killme-1.0-1.fc40.x86_64") == main_row
    assert pipeline.hub.requests.count(pipeline.hub.url_path(main["id"])) == 1
    # The second worker got the unacknowledged message again and finished the build.
    assert "killme-1.0-1.fc40: 2 rpms imported, 1 already present" in out
    assert pipeline.counts() == {pipeline.cfg.queue: 0, pipeline.cfg.retry_queue: 0,
                                 pipeline.cfg.dead_queue: 0}


def test_a_build_that_kills_every_worker_ends_in_the_dead_letter_queue(
        pipeline: Pipeline) -> None:
    """A poison build: every worker that takes it dies (here: SIGKILL while it hangs in a
    download). Each redelivery counts as an attempt; after max_attempts (2) the message is
    dead-lettered with the reason, and the next worker stays up and idle."""
    rpms = cached_rpms("poison")
    build = pipeline.hub.add_build(rpms)
    stalled = next(r for r in pipeline.hub.listBuildRPMs(build["id"])
                   if r["name"] == "poison-debuginfo")
    release = pipeline.hub.stall(stalled["id"])
    path = pipeline.hub.url_path(stalled["id"])
    enqueue([BuildRequest("test", build["id"], "test")], pipeline.cfg)
    for deaths in (1, 2):
        worker = pipeline.worker()
        wait_for(f"worker {deaths} hanging in the download",
                 lambda n=deaths: pipeline.hub.requests.count(path) == n)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate()
    last = pipeline.worker()
    wait_for("the dead-letter queue", lambda: pipeline.counts()[pipeline.cfg.dead_queue] == 1)
    assert last.poll() is None
    out = pipeline.stop(last)
    release.set()
    [(headers, body)] = pipeline.dead_letters()
    assert json.loads(body) == {"instance": "test", "build": build["id"], "source": "test"}
    assert headers[ATTEMPTS] == 2
    assert "never acknowledged it (it died or lost its connection) (2 times)" in str(
        headers[REASON])
    assert "-> " + pipeline.cfg.dead_queue in out
    assert pipeline.hub.requests.count(path) == 2  # the last worker never started it
    assert pipeline.counts()[pipeline.cfg.queue] == 0


def test_a_bad_checksum_ends_in_the_dead_letter_queue_with_its_reason(
        pipeline: Pipeline) -> None:
    rpms = cached_rpms("badsum")
    build = pipeline.hub.add_build(rpms)
    by_name = {r["name"]: r for r in pipeline.hub.listBuildRPMs(build["id"])}
    bad = by_name["badsum-libs"]
    pipeline.hub.corrupt(bad["id"])
    enqueue([BuildRequest("test", "badsum-1.0-1.fc40", "test")], pipeline.cfg)
    worker = pipeline.worker()
    wait_for("the dead-letter queue", lambda: pipeline.counts()[pipeline.cfg.dead_queue] == 1)
    pipeline.stop(worker)
    [(headers, body)] = pipeline.dead_letters()
    assert json.loads(body) == {"instance": "test", "build": "badsum-1.0-1.fc40",
                                "source": "test"}
    assert headers[ATTEMPTS] == 2  # max_attempts tries, then the DLQ
    reason = str(headers[REASON])
    assert reason.startswith("badsum-libs-1.0-1.fc40.x86_64: badsum-libs-1.0-1.fc40.x86_64.rpm: "
                             "SIGMD5 ")
    assert f"does not match Koji's payloadhash {bad['payloadhash']} (after 2 tries)" in reason
    # The good rpms are in, the bad one left nothing; it was fetched once per attempt.
    good = [p for p in rpms if not p.name.startswith("badsum-libs")]
    assert pipeline.rows() == expected_for(good)
    assert pipeline.packages() == sorted(p.name.removesuffix(".rpm") for p in good)
    assert pipeline.hub.requests.count(pipeline.hub.url_path(bad["id"])) == 2


def test_unreadable_messages_and_unknown_builds_go_straight_to_the_dead_letter_queue(
        pipeline: Pipeline) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(pipeline.cfg.url))
    channel = connection.channel()
    from darkimport.queue.messages import declare

    declare(channel, pipeline.cfg)
    channel.basic_publish("", pipeline.cfg.queue, b"{not json")
    connection.close()
    enqueue([BuildRequest("test", "nosuch-1-1.fc40", "test"),
             BuildRequest("elsewhere", 7, "test")], pipeline.cfg)
    worker = pipeline.worker()
    wait_for("three dead letters", lambda: pipeline.counts()[pipeline.cfg.dead_queue] == 3)
    pipeline.stop(worker)
    reasons = sorted(str(h[REASON]) for h, _ in pipeline.dead_letters())
    assert reasons[0].startswith("test: no build 'nosuch-1-1.fc40'")
    assert reasons[1] == "unknown Koji instance 'elsewhere' (configured: test)"
    assert reasons[2].startswith("unreadable message: not JSON")
    assert pipeline.packages() == []


@pytest.mark.parametrize("pipeline", ["sqlite", "mariadb"], indirect=True)
def test_two_workers_on_the_same_build_never_duplicate_rows(pipeline: Pipeline) -> None:
    builds = [cached_rpms("twice"), cached_rpms("twice", "1.0", "2.fc40"), cached_rpms("other")]
    infos = [pipeline.hub.add_build(rpms) for rpms in builds]
    # Every build three times, interleaved: both workers get copies of the same build.
    enqueue([BuildRequest("test", info["id"], "test") for _ in range(3) for info in infos],
            pipeline.cfg)
    worker = pipeline.worker("--concurrency", "2")
    expected = expected_for([p for rpms in builds for p in rpms])
    wait_for("every rpm", lambda: pipeline.rows() == expected)
    wait_for("the queue to drain", lambda: pipeline.counts()[pipeline.cfg.queue] == 0)
    out = pipeline.stop(worker)
    assert worker.returncode == 0, out
    assert pipeline.packages() == sorted(p.name.removesuffix(".rpm")
                                         for rpms in builds for p in rpms)
    total = pipeline.query("SELECT COUNT(*) FROM lookup_elffile")[0][0]
    assert total == len(expected)
    assert pipeline.query("SELECT COUNT(*) FROM lookup_build")[0][0] == 3
    assert len(set(re.findall(r"worker (\d+) consuming", out))) == 2
    assert pipeline.counts()[pipeline.cfg.dead_queue] == 0


def test_a_fedora_message_on_the_broker_leads_to_imported_rows(
        pipeline: Pipeline, tmp_path: Path) -> None:
    rpms = cached_rpms("busbuild")
    build = pipeline.hub.add_build(rpms)
    tag = uuid.uuid4().hex[:10]
    topic = f"org.fedoraproject.t{tag}.buildsys.build.state.change"
    bus_queue = f"darkserver.test.bus.{tag}"
    conf = tmp_path / "fedora-messaging.toml"
    conf.write_text(textwrap.dedent(f"""\
        amqp_url = "{AMQP}"
        publish_exchange = "amq.topic"
        [queues."{bus_queue}"]
        durable = false
        auto_delete = true
        exclusive = false
        arguments = {{}}
        [[bindings]]
        queue = "{bus_queue}"
        exchange = "amq.topic"
        routing_keys = ["{topic}"]
        [consumer_config]
        darkserver_amqp_url = "{AMQP}"
        darkserver_queue = "{pipeline.cfg.queue}"
        default_instance = "test"
        instances = ["test"]
        retry_pause = 0.1
        [qos]
        prefetch_size = 0
        prefetch_count = 5
    """))
    env = os.environ | pipeline.env | {"FEDORA_MESSAGING_CONF": str(conf)}
    consumer = subprocess.Popen(
        [str(BIN / "fedora-messaging"), "consume",
         "--callback=darkimport.queue.fedmsg_consumer:DarkserverConsumer"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        start_new_session=True,
    )
    pipeline.workers.append(consumer)

    def bus_queue_bound() -> bool:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        try:
            connection.channel().queue_declare(bus_queue, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            return False
        finally:
            if connection.is_open:
                connection.close()

    wait_for("the consumer's queue", lambda: time.sleep(0.4) or bus_queue_bound())
    base = {"name": "busbuild", "version": "1.0", "release": "1.fc40", "epoch": None,
            "attribute": "state", "owner": "tester", "task_id": build["task_id"],
            "instance": "test"}
    bodies = [
        base | {"old": 0, "new": 3, "build_id": build["id"]},  # FAILED: nothing to do
        {"unexpected": "shape"},  # junk: dropped, the consumer keeps going
        base | {"old": 0, "new": 1, "build_id": build["id"]},  # COMPLETE: import it
    ]
    script = textwrap.dedent(f"""\
        import json, sys
        from fedora_messaging import api, message
        for body in json.loads(sys.argv[1]):
            api.publish(message.Message(topic={topic!r}, body=body))
    """)
    subprocess.run([sys.executable, "-c", script, json.dumps(bodies)], env=env, check=True,
                   cwd=ROOT, timeout=60)
    wait_for("the build request on our queue",
             lambda: pipeline.counts()[pipeline.cfg.queue] == 1)
    worker = pipeline.worker()
    wait_for("the rows", lambda: pipeline.rows() == expected_for(rpms))
    wait_for("the queue to drain", lambda: pipeline.counts()[pipeline.cfg.queue] == 0)
    pipeline.stop(worker)
    pipeline.stop(consumer)
    assert pipeline.query("SELECT instance, koji_build_id FROM lookup_build") == [
        ("test", build["id"])]
    assert pipeline.counts()[pipeline.cfg.dead_queue] == 0


def test_a_worker_reconnects_when_the_broker_drops_its_connection(pipeline: Pipeline) -> None:
    first, second = cached_rpms("before"), cached_rpms("after")
    infos = [pipeline.hub.add_build(rpms) for rpms in (first, second)]
    worker = pipeline.worker()
    enqueue([BuildRequest("test", infos[0]["id"], "test")], pipeline.cfg)
    wait_for("the first build", lambda: pipeline.rows() == expected_for(first))

    def our_connections() -> list[str]:
        out = subprocess.run(["rabbitmqctl", "-q", "list_connections", "--no-table-headers",
                              "pid", "client_properties"], capture_output=True, text=True,
                             check=True).stdout
        return [line.split("\t", 1)[0] for line in out.splitlines()
                if "darkserver-worker " in line and pipeline.cfg.queue in line]

    names = our_connections()
    assert len(names) == 1
    subprocess.run(["rabbitmqctl", "-q", "close_connection", names[0], "test: broker restart"],
                   check=True, capture_output=True)
    enqueue([BuildRequest("test", infos[1]["id"], "test")], pipeline.cfg)
    wait_for("the second build, after reconnecting",
             lambda: pipeline.rows() == expected_for(first + second), timeout=90)
    out = pipeline.stop(worker)
    assert "broker connection lost" in out
    assert worker.returncode == 0, out
