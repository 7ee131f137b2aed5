"""The two push sources, which only enqueue: the Koji hub plugin (loaded the way the hub loads
plugins, run through koji.plugin.run_callbacks) and the fedora-messaging consumer's decisions.
Both publish to the real RabbitMQ."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import koji
import koji.plugin
import pika
import pytest
from fedora_messaging.exceptions import Drop, Nack
from fedora_messaging.message import Message
from koji.context import context

from darkcore.settings import TEST_AMQP_URL
from darkimport.queue import fedmsg_consumer
from darkimport.queue.messages import ATTEMPTS, QueueConfig, declare

AMQP = TEST_AMQP_URL.get()
PLUGIN_DIR = Path(__file__).resolve().parents[3] / "conf" / "koji-hub-plugin"
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/%2F"  # nothing listens on port 1


@pytest.fixture
def queue() -> Iterator[QueueConfig]:
    cfg = QueueConfig(url=AMQP, queue=f"darkserver.test.{uuid.uuid4().hex[:12]}")
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    declare(connection.channel(), cfg)
    connection.close()
    yield cfg
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    for name in (cfg.queue, cfg.retry_queue, cfg.dead_queue):
        channel.queue_delete(name)
    connection.close()


def drain(cfg: QueueConfig) -> list[tuple[dict[str, object], dict[str, object]]]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    found = []
    try:
        channel = connection.channel()
        while True:
            method, props, body = channel.basic_get(cfg.queue, auto_ack=True)
            if method is None:
                return found
            assert props.delivery_mode == 2  # persistent
            found.append((dict(props.headers or {}), json.loads(body)))
    finally:
        connection.close()


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The plugin loaded by koji's PluginTracker and registered as the hub registers it."""
    monkeypatch.setenv("DARKSERVER_KOJI_PLUGIN_CONF", str(tmp_path / "darkserver.conf"))
    tracker = koji.plugin.PluginTracker(path=str(PLUGIN_DIR))
    module = tracker.load("darkserver_plugin", reload=True)
    saved = {k: list(v) for k, v in koji.plugin.callbacks.items()}
    for name in dir(module):
        func = getattr(module, name)
        for cbtype in getattr(func, "callbacks", ()):
            koji.plugin.register_callback(cbtype, func)
    context.darkserver_builds = []
    yield module
    for key, funcs in saved.items():
        koji.plugin.callbacks[key][:] = funcs


def configure(plugin: ModuleType, path: Path, url: str, queue: str) -> Path:
    spool = path.parent / "spool.jsonl"
    path.write_text(f"[queue]\nurl = {url}\nqueue = {queue}\ninstance = primary\ntimeout = 2\n"
                    f"spool = {spool}\n")
    plugin._config = None
    return spool


def hub_imports(build_id: int, state: str = "COMPLETE") -> None:
    """What the hub does: postImport (type build) inside the transaction, postCommit after."""
    build = {"id": build_id, "state": koji.BUILD_STATES[state], "nvr": f"b-1-{build_id}"}
    koji.plugin.run_callbacks("postImport", type="build", build=build, build_id=build_id)
    koji.plugin.run_callbacks("postImport", type="rpm", rpm={"id": 1}, build=build)


def test_the_plugin_is_marked_ignore_error_and_uses_no_build_state_hook(plugin: ModuleType
                                                                       ) -> None:
    registered = {cb: [f.__name__ for f in funcs if f.__module__ == plugin.__name__]
                  for cb, funcs in koji.plugin.callbacks.items()}
    assert registered["postImport"] == ["darkserver_note_build"]
    assert registered["postCommit"] == ["darkserver_publish"]
    assert registered["postBuildStateChange"] == []
    for funcs in koji.plugin.callbacks.values():
        for func in funcs:
            if func.__module__ == plugin.__name__:
                assert func.failure_is_an_option is True


def test_the_plugin_queues_imported_builds_after_the_commit(
        plugin: ModuleType, queue: QueueConfig, tmp_path: Path) -> None:
    configure(plugin, tmp_path / "darkserver.conf", AMQP, queue.queue)
    hub_imports(101)
    hub_imports(102)
    hub_imports(103, state="FAILED")
    assert drain(queue) == []  # nothing before the commit
    koji.plugin.run_callbacks("postCommit")
    assert drain(queue) == [
        ({ATTEMPTS: 0, "x-darkserver-source": "hub"},
         {"instance": "primary", "build": 101, "source": "hub"}),
        ({ATTEMPTS: 0, "x-darkserver-source": "hub"},
         {"instance": "primary", "build": 102, "source": "hub"}),
    ]
    koji.plugin.run_callbacks("postCommit")  # a later commit of something else: nothing again
    assert drain(queue) == []


def test_the_plugin_never_fails_the_hub_and_spools_what_it_could_not_send(
        plugin: ModuleType, queue: QueueConfig, tmp_path: Path) -> None:
    conf = tmp_path / "darkserver.conf"
    spool = configure(plugin, conf, DEAD_BROKER, queue.queue)
    hub_imports(201)
    koji.plugin.run_callbacks("postCommit")  # must not raise
    assert [json.loads(line) for line in spool.read_text().splitlines()] == [
        {"instance": "primary", "build": 201}]
    # A broken configuration does not fail the hub either.
    conf.write_text("this is not an ini file")
    plugin._config = None
    hub_imports(202)
    koji.plugin.run_callbacks("postCommit")
    # The broker is back: the spooled build goes out first, then the new one.
    configure(plugin, conf, AMQP, queue.queue)
    hub_imports(203)
    koji.plugin.run_callbacks("postCommit")
    assert [body["build"] for _h, body in drain(queue)] == [201, 203]
    assert spool.read_text() == ""


def message(body: object, topic: str = "org.fedoraproject.prod.buildsys.build.state.change"
            ) -> Message:
    return Message(topic=topic, body=body)


def test_the_bus_consumer_queues_complete_builds_only(
        queue: QueueConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    from fedora_messaging import config as fm_config

    monkeypatch.setitem(fm_config.conf, "consumer_config", {
        "darkserver_amqp_url": AMQP, "darkserver_queue": queue.queue,
        "instances": ["primary"], "retry_pause": 0})
    consumer = fedmsg_consumer.DarkserverConsumer()
    complete = {"build_id": 2345, "new": 1, "old": 0, "instance": "primary",
                "name": "x", "version": "1", "release": "1.fc40"}
    consumer(message(complete))
    dropped = [
        message(complete | {"new": 3}),  # FAILED
        message(complete | {"new": 0}),  # BUILDING
        message(complete, topic="org.fedoraproject.prod.buildsys.tag"),
        message(complete | {"build_id": "2345"}),
        message(complete | {"build_id": None}),
        message(complete | {"instance": "ppc"}),  # not an instance we import
        message(["not", "a", "dict"]),
    ]
    for msg in dropped:
        with pytest.raises(Drop):
            consumer(msg)
    assert drain(queue) == [({ATTEMPTS: 0, "x-darkserver-source": "fedmsg"},
                             {"instance": "primary", "build": 2345, "source": "fedmsg"})]
    # Our broker down: the message goes back to the bus rather than being lost.
    consumer.queue = QueueConfig(url=DEAD_BROKER, queue=queue.queue)
    consumer._publisher = None
    with pytest.raises(Nack):
        consumer(message(complete))
