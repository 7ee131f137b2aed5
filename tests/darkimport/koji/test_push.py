"""The Koji hub plugin, loaded the way kojihub loads plugins (koji.plugin.PluginTracker, callbacks
registered from the functions' ``callbacks`` attribute, fired through koji.plugin.run_callbacks),
fed every callback with the argument names and shapes kojihub 1.35 passes (kojihub.py
import_build, import_rpm, CG_Importer.do_import, import_archive, new_build, _promote_build;
kojixmlrpc's request handler for preCommit/postCommit and context._threadclear). The broker is
the real RabbitMQ; the fedora-messaging consumer's decisions are tested at the end."""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

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
from tests.amqp import take_all

AMQP = TEST_AMQP_URL.get()
PLUGIN_DIR = Path(__file__).resolve().parents[3] / "conf" / "koji-hub-plugin"
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/%2F"  # nothing listens on port 1
COMPLETE = koji.BUILD_STATES["COMPLETE"]
LOGGER = "koji.plugin.darkserver"


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
    found = []
    for props, body in take_all(cfg.queue, AMQP):
        assert props.delivery_mode == 2  # persistent
        assert abs(props.timestamp - time.time()) < 600  # for the worker's queue lag
        found.append((dict(props.headers or {}), json.loads(body)))
    return found


def builds_in(cfg: QueueConfig) -> list[object]:
    return [body["build"] for _h, body in drain(cfg)]


class Hub:
    """The parts of kojihub's request handling the plugin sees: a fresh ``context`` per request
    (``_threadclear``, ``opts``), the callbacks fired inside the request, and ``preCommit`` /
    ``postCommit`` only when the request ends without an error (kojixmlrpc.application)."""

    def __init__(self, koji_dir: Path) -> None:
        self.opts = {"KojiDir": str(koji_dir)}

    def request(self, body: Callable[[], None], fail: bool = False) -> None:
        context._threadclear()
        context.opts = self.opts
        context.commit_pending = True
        try:
            body()
            if fail:
                raise koji.GenericError("the call failed after the callbacks: rollback")
        except koji.GenericError:
            return  # h.traceback set: context.cnx.rollback(), no commit callbacks
        finally:
            if fail:
                context._threadclear()
        koji.plugin.run_callbacks("preCommit")
        koji.plugin.run_callbacks("postCommit")
        context._threadclear()


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return Hub(tmp_path / "mnt-koji")


def load_plugin() -> ModuleType:
    """Load and register the plugin as kojixmlrpc.load_plugins and its registry loop do."""
    tracker = koji.plugin.PluginTracker(path=[str(PLUGIN_DIR)])
    module = tracker.load("darkserver_plugin", reload=True)
    for name in dir(module):
        func = getattr(module, name)
        for cbtype in getattr(func, "callbacks", ()):
            koji.plugin.register_callback(cbtype, func)
    return module


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "darkserver.conf"
    monkeypatch.setenv("DARKSERVER_KOJI_PLUGIN_CONF", str(path))
    return path


@pytest.fixture
def plugin(conf: Path) -> Iterator[ModuleType]:
    saved = {k: list(v) for k, v in koji.plugin.callbacks.items()}
    if not conf.exists():
        conf.write_text("[queue]\ninstance = unset\n")
    yield load_plugin()
    for key, funcs in saved.items():
        koji.plugin.callbacks[key][:] = funcs
    context._threadclear()


def configure(conf: Path, url: str, queue: str, spool: Path | None = None,
              instance: str = "devhub", **extra: object) -> Path:
    spool = spool or conf.parent / "spool"
    values = {"url": url, "queue": queue, "instance": instance, "timeout": 2, "spool": spool}
    text = "[queue]\n" + "".join(f"{k} = {v}\n" for k, v in (values | extra).items())
    # A different size or mtime, so the plugin sees the change (mtime can repeat within a tick).
    before = conf.stat() if conf.exists() else None
    conf.write_text(text)
    if before is not None and before.st_size == len(text):
        os.utime(conf, (before.st_atime, before.st_mtime + 1))
    return spool


# -- what kojihub passes -------------------------------------------------------------------------


def binfo(build_id: int, name: str = "pkg", release: str = "1.fc40", state: int = COMPLETE,
          draft: bool = False) -> dict[str, Any]:
    """get_build()'s dict (kojihub 1.35), every key it has."""
    if draft:
        release = f"{release},draft_{build_id}"
    return {
        "id": build_id, "build_id": build_id, "version": "1.0", "release": release,
        "epoch": None, "draft": draft, "state": state,
        "completion_time": "2026-12-03 10:00:00+00:00", "promotion_time": None,
        "start_time": "2026-12-03 09:50:00+00:00", "task_id": None, "creation_event_id": 7,
        "creation_time": "2026-12-03 09:50:00+00:00", "package_id": 3, "package_name": name,
        "name": name, "volume_id": 0, "volume_name": "DEFAULT",
        "nvr": f"{name}-1.0-{release}", "creation_ts": 1.7e9, "start_ts": 1.7e9,
        "completion_ts": 1.7e9, "promotion_ts": None, "owner_id": 1, "owner_name": "kojiadmin",
        "promoter_id": None, "promoter_name": None, "cg_id": None, "source": None,
        "extra": None, "cg_name": None,
    }


def rpminfo(build: dict[str, Any], arch: str, name: str | None = None) -> dict[str, Any]:
    """import_rpm()'s rpminfo as passed to postImport (type rpm)."""
    name = name or build["name"]
    return {
        "name": name, "version": build["version"], "release": build["release"],
        "epoch": None, "sourcepackage": 1 if arch == "src" else 0, "arch": arch,
        "buildtime": 1700000000, "sourcerpm": None if arch == "src" else
        f"{build['name']}-{build['version']}-{build['release']}.src.rpm",
        "draft": build["draft"], "id": 9000 + len(name) + len(arch), "build_id": build["id"],
        "size": 12345, "payloadhash": "0" * 32, "buildroot_id": None, "external_repo_id": 0,
    }


def import_rpm(build: dict[str, Any], arch: str, name: str | None = None,
               fileinfo: dict[str, Any] | None = None) -> None:
    rpm = rpminfo(build, arch, name)
    fn = f"/mnt/koji/work/tmp/{rpm['name']}-1.0-{build['release']}.{arch}.rpm"
    koji.plugin.run_callbacks("preImport", type="rpm", rpm=rpm, build=build, filepath=fn,
                              fileinfo=fileinfo)
    koji.plugin.run_callbacks("postImport", type="rpm", rpm=rpm, build=build, filepath=fn,
                              fileinfo=fileinfo)


def new_build(build: dict[str, Any]) -> None:
    """new_build(): createEmptyBuild, or importRPM of a source rpm with no build yet."""
    data = {k: build[k] for k in ("name", "version", "release", "epoch", "state")}
    koji.plugin.run_callbacks("preBuildStateChange", attribute="state", old=None,
                              new=build["state"], info=data)
    koji.plugin.run_callbacks("postBuildStateChange", attribute="state", old=None,
                              new=build["state"], info=build)


def kojid_build(build: dict[str, Any]) -> None:
    """host.completeBuild -> import_build(srpm, rpms, brmap, task_id, build_id, logs)."""
    srpm = f"tasks/1/1/{build['nvr']}.src.rpm"
    rpms = [f"tasks/2/2/{build['name']}-1.0-{build['release']}.x86_64.rpm"]
    kws = {"srpm": srpm, "rpms": rpms, "brmap": {srpm: 1, rpms[0]: 1}, "task_id": 1,
           "build_id": build["id"], "logs": {"x86_64": ["tasks/2/2/build.log"]}}
    koji.plugin.run_callbacks("preImport", type="build", build=None, **kws)
    building = build | {"state": koji.BUILD_STATES["BUILDING"]}
    koji.plugin.run_callbacks("preBuildStateChange", attribute="state", old=0, new=COMPLETE,
                              info=building)
    koji.plugin.run_callbacks("postBuildStateChange", attribute="state", old=0, new=COMPLETE,
                              info=build)
    for arch, name in (("src", None), ("x86_64", None), ("x86_64", build["name"] + "-debuginfo")):
        import_rpm(build, arch, name)
    koji.plugin.run_callbacks("postImport", type="build", build=build, **kws)


def cg_import(build: dict[str, Any]) -> None:
    """CG_Importer.do_import: rpm outputs through import_rpm (with fileinfo), then type cg."""
    metadata = {"metadata_version": 0, "build": {"name": build["name"], "version": "1.0",
                                                 "release": build["release"]},
                "buildroots": [], "output": []}
    koji.plugin.run_callbacks("preImport", type="cg", metadata=metadata, directory="cg/dir")
    import_rpm(build, "x86_64", fileinfo={"buildroot_id": 1, "type": "rpm"})
    koji.plugin.run_callbacks("postImport", type="cg", metadata=metadata, directory="cg/dir",
                              build=build)


def import_archive(build: dict[str, Any]) -> None:
    archive = {"id": 77, "type_id": 5, "btype": "maven", "btype_id": 2, "build_id": build["id"],
               "buildroot_id": None, "filename": "x.jar", "size": 10, "checksum": "0" * 64,
               "checksum_type": 2, "metadata_only": False, "extra": None}
    kws = {"archive": archive, "build": build, "build_type": "maven",
           "filepath": "/mnt/koji/work/x.jar", "fileinfo": {}}
    koji.plugin.run_callbacks("preImport", type="archive", **kws)
    koji.plugin.run_callbacks("postImport", type="archive", **kws)


def promote(draft: dict[str, Any]) -> dict[str, Any]:
    """_promote_build(): pre/postBuildPromote around the update that drops the draft flag."""
    target = draft["release"].split(",draft_")[0]
    user = {"id": 1, "name": "kojiadmin", "status": 0, "usertype": 0, "krb_principals": []}
    koji.plugin.run_callbacks("preBuildPromote", draft_release=draft["release"],
                              target_release=target, build=draft, user=user)
    promoted = draft | {"draft": False, "release": target,
                        "nvr": f"{draft['name']}-1.0-{target}", "promoter_id": 1,
                        "promotion_ts": 1.8e9}
    koji.plugin.run_callbacks("postBuildPromote", draft_release=draft["release"],
                              target_release=target, build=promoted, user=user)
    return promoted


# -- the tests -------------------------------------------------------------------------------


def test_the_plugin_registers_import_promote_and_commit_callbacks_all_ignore_error(
        plugin: ModuleType) -> None:
    registered = {cb: sorted(f.__name__ for f in funcs if f.__module__ == plugin.__name__)
                  for cb, funcs in koji.plugin.callbacks.items()}
    assert {cb: names for cb, names in registered.items() if names} == {
        "postImport": ["darkserver_note_import"],
        "postBuildPromote": ["darkserver_note_promote"],
        "postCommit": ["darkserver_send"],
    }
    for funcs in koji.plugin.callbacks.values():
        for func in funcs:
            if func.__module__ == plugin.__name__:
                assert func.failure_is_an_option is True


def test_every_way_into_koji_queues_the_build_once_after_the_commit(
        plugin: ModuleType, conf: Path, queue: QueueConfig, hub: Hub,
        caplog: pytest.LogCaptureFixture) -> None:
    configure(conf, AMQP, queue.queue)
    caplog.set_level(logging.INFO, LOGGER)
    # kojid: type build + one type rpm per rpm + state change, one transaction: one message.
    hub.request(lambda: kojid_build(binfo(101)))
    assert builds_in(queue) == [101]
    # `koji import`: one request per file. The source rpm creates the build (new_build, then
    # its rpm event): nothing to import yet; each binary rpm then queues the build.
    empty = binfo(102)
    hub.request(lambda: (new_build(empty), import_rpm(empty, "src")))
    assert builds_in(queue) == []
    hub.request(lambda: import_rpm(empty, "x86_64"))
    hub.request(lambda: import_rpm(empty, "x86_64", "pkg-debuginfo"))
    assert builds_in(queue) == [102, 102]
    # createEmptyBuild: COMPLETE and empty; its later rpm import queues it.
    hub.request(lambda: new_build(binfo(103)))
    assert builds_in(queue) == []
    hub.request(lambda: import_rpm(binfo(103), "aarch64"))
    assert builds_in(queue) == [103]
    # A content generator import (its rpm outputs fire type rpm too) and an archive import.
    hub.request(lambda: cg_import(binfo(104) | {"cg_id": 1, "cg_name": "osbs"}))
    hub.request(lambda: import_archive(binfo(105)))
    assert builds_in(queue) == [104, 105]
    # Several builds in one transaction (a multicall): each once, in build id order.
    hub.request(lambda: (import_rpm(binfo(107), "x86_64"), kojid_build(binfo(106))))
    assert drain(queue) == [
        ({ATTEMPTS: 0, "x-darkserver-source": "hub"},
         {"instance": "devhub", "build": 106, "source": "hub"}),
        ({ATTEMPTS: 0, "x-darkserver-source": "hub"},
         {"instance": "devhub", "build": 107, "source": "hub"}),
    ]
    # A later commit of something else sends nothing again.
    hub.request(lambda: None)
    assert builds_in(queue) == []
    queued = [r.getMessage() for r in caplog.records if "queued build" in r.getMessage()]
    assert len(queued) == 8
    assert "queued build 101 pkg-1.0-1.fc40 (postImport rpm) as instance 'devhub'" in queued[0]


def test_drafts_wait_for_promotion_and_failures_rollbacks_and_images_send_nothing(
        plugin: ModuleType, conf: Path, queue: QueueConfig, hub: Hub) -> None:
    configure(conf, AMQP, queue.queue)
    draft = binfo(201, draft=True)
    hub.request(lambda: kojid_build(draft))
    hub.request(lambda: import_rpm(draft, "x86_64"))
    assert builds_in(queue) == []
    hub.request(lambda: promote(draft))
    assert builds_in(queue) == [201]
    # The call fails after the callbacks: the hub rolls back and never fires postCommit; the
    # notes die with the request's context, so the next commit does not send them either.
    hub.request(lambda: kojid_build(binfo(202)), fail=True)
    hub.request(lambda: import_rpm(binfo(203), "x86_64"))
    assert builds_in(queue) == [203]
    failed = binfo(204, state=koji.BUILD_STATES["FAILED"])
    image = {"id": 5, "arch": "x86_64"}
    hub.request(lambda: (
        koji.plugin.run_callbacks("postBuildStateChange", attribute="state", old=0,
                                  new=failed["state"], info=failed),
        koji.plugin.run_callbacks("postImport", type="image", image=image, build=binfo(205),
                                  fullpath="/mnt/koji/x.qcow2"),
    ))
    assert builds_in(queue) == []


def test_an_unreadable_config_is_reported_at_load_and_builds_spool_to_the_default_path(
        conf: Path, queue: QueueConfig, hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    saved = {k: list(v) for k, v in koji.plugin.callbacks.items()}
    try:
        conf.write_text("[queue]\nurl = this is not finished\n[broken")
        with caplog.at_level(logging.INFO, LOGGER):
            load_plugin()
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and str(conf) in errors[0] and "cannot be used" in errors[0]
        hub.request(lambda: kojid_build(binfo(301)))
        default = Path(hub.opts["KojiDir"]) / "darkserver-spool"
        spooled = [json.loads(p.read_text()) for p in default.glob("*.json")]
        assert [(s["instance"], s["build"], s["nvr"]) for s in spooled] == [
            (None, 301, "pkg-1.0-1.fc40")]
        # No instance, no default: reported too.
        caplog.clear()
        conf.write_text(f"[queue]\nurl = {AMQP}\nqueue = {queue.queue}\n")
        hub.request(lambda: import_rpm(binfo(302), "x86_64"))
        assert any("no 'instance'" in r.getMessage() for r in caplog.records
                   if r.levelno == logging.ERROR)
        assert sorted(p.name for p in default.glob("*.json")) == [
            "_unset_.301.json", "_unset_.302.json"]
        assert builds_in(queue) == []
        # Fixed (read again when the file changes, no restart): the next commit on any
        # request sends the spooled builds under the configured instance.
        conf.write_text(f"[queue]\nurl = {AMQP}\nqueue = {queue.queue}\ninstance = fixed\n")
        hub.request(lambda: None)
        assert sorted((b["instance"], b["build"]) for _h, b in drain(queue)) == [
            ("fixed", 301), ("fixed", 302)]
        assert list(default.glob("*.json")) == []
    finally:
        for key, funcs in saved.items():
            koji.plugin.callbacks[key][:] = funcs
        context._threadclear()


def _spool_in_a_process(conf: str, koji_dir: str, first: int, count: int,
                        start: Any) -> None:
    os.environ["DARKSERVER_KOJI_PLUGIN_CONF"] = conf
    for funcs in koji.plugin.callbacks.values():  # a fresh hub process: only its own load
        funcs.clear()
    load_plugin()
    hub = Hub(Path(koji_dir))
    start.wait()
    for build_id in range(first, first + count):
        hub.request(lambda b=build_id: import_rpm(binfo(b), "x86_64"))


def test_many_hub_processes_and_threads_spooling_at_once_lose_nothing(
        plugin: ModuleType, conf: Path, queue: QueueConfig, hub: Hub, tmp_path: Path) -> None:
    spool = configure(conf, DEAD_BROKER, queue.queue)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_spool_in_a_process,
                         args=(str(conf), hub.opts["KojiDir"], 1000 + 100 * i, 25, start))
             for i in range(6)]
    for proc in procs:
        proc.start()
    start.set()
    # Threads of this process too (a threaded mod_wsgi), each with its own request context.
    threads = [threading.Thread(target=lambda i=i: [
        hub.request(lambda b=b: import_rpm(binfo(b), "x86_64"))
        for b in range(5000 + 100 * i, 5000 + 100 * i + 10)]) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    wanted = ({b for i in range(6) for b in range(1000 + 100 * i, 1000 + 100 * i + 25)}
              | {b for i in range(4) for b in range(5000 + 100 * i, 5000 + 100 * i + 10)})
    assert {json.loads(p.read_text())["build"] for p in spool.glob("*.json")} == wanted
    assert [p.name for p in spool.iterdir() if p.name.endswith(".tmp")] == []
    # The broker is back: the commits flush it, batch by batch, every build once.
    configure(conf, AMQP, queue.queue, batch=100)
    os.unlink(spool / ".broker-down")
    sent: list[object] = []
    for _ in range(3):
        hub.request(lambda: None)
        sent += builds_in(queue)
    assert sorted(sent) == sorted(wanted)  # type: ignore[type-var]
    assert list(spool.glob("*.json")) == []


class HangingBroker:
    """Accepts TCP connections and never answers: a broker that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.sock.getsockname()[1]}/%2F"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_after_a_broker_failure_builds_go_straight_to_the_spool_until_the_backoff_ends(
        plugin: ModuleType, conf: Path, queue: QueueConfig, hub: Hub,
        caplog: pytest.LogCaptureFixture) -> None:
    broker = HangingBroker()
    try:
        spool = configure(conf, broker.url, queue.queue, timeout=1, backoff=3600)
        caplog.set_level(logging.INFO, LOGGER)
        for build_id in range(401, 411):
            hub.request(lambda b=build_id: import_rpm(binfo(b), "x86_64"))
        # One try, then the back-off: the other nine never touched the broker.
        assert len(broker.accepted) == 1
        assert len(list(spool.glob("*.json"))) == 10
        spooled = [r.getMessage() for r in caplog.records if "spooled build" in r.getMessage()]
        assert len(spooled) == 10
        assert "unavailable" in spooled[0] and "not tried for another" in spooled[1]
        assert "127.0.0.1:" in spooled[0] and "guest:***@" in spooled[0]
    finally:
        broker.close()
    # The back-off is over (the marker's time is what every process reads) and the broker
    # works: the next commit sends everything.
    configure(conf, AMQP, queue.queue, backoff=3600)
    os.utime(spool / ".broker-down", (0, time.time() - 7200))
    hub.request(lambda: import_rpm(binfo(411), "x86_64"))
    assert sorted(builds_in(queue)) == list(range(401, 412))  # type: ignore[type-var]
    assert not (spool / ".broker-down").exists()
    assert any("flushed 10 spooled build(s)" in r.getMessage() for r in caplog.records)


def test_broker_failures_are_logged_with_their_real_reason(
        plugin: ModuleType, conf: Path, queue: QueueConfig, hub: Hub,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    spool = configure(conf, DEAD_BROKER, queue.queue)
    hub.request(lambda: import_rpm(binfo(501), "x86_64"))
    assert caplog.records[-1].getMessage().endswith(
        "unavailable: ConnectionRefusedError: [Errno 111] Connection refused")
    os.unlink(spool / ".broker-down")
    configure(conf, AMQP, "darkserver.no-such-queue." + uuid.uuid4().hex[:8])
    hub.request(lambda: import_rpm(binfo(502), "x86_64"))
    assert "does not exist on the broker" in caplog.records[-1].getMessage()
    os.unlink(spool / ".broker-down")
    bad_login = AMQP.replace("guest:guest@", "guest:wrong@")
    configure(conf, bad_login, queue.queue)
    hub.request(lambda: import_rpm(binfo(503), "x86_64"))
    assert "refused the login" in caplog.records[-1].getMessage()
    assert "wrong" not in caplog.records[-1].getMessage()
    assert sorted(p.name for p in spool.glob("*.json")) == [
        "devhub.501.json", "devhub.502.json", "devhub.503.json"]


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


def test_enqueue_spool_sends_what_the_plugin_spooled(
        plugin: ModuleType, conf: Path, queue: QueueConfig, hub: Hub, tmp_path: Path) -> None:
    from tests.helpers import BIN, run_cmd

    spool = tmp_path / "spool"
    conf.write_text(f"[queue]\nurl = {DEAD_BROKER}\nspool = {spool}\n")  # no instance
    hub.request(lambda: import_rpm(binfo(601), "x86_64"))
    configure(conf, DEAD_BROKER, queue.queue, spool=spool, instance="lab")
    hub.request(lambda: import_rpm(binfo(602), "x86_64"))
    hub.request(lambda: import_rpm(binfo(603), "x86_64"))
    assert sorted(p.name for p in spool.glob("*.json")) == [
        "_unset_.601.json", "lab.602.json", "lab.603.json"]
    down = run_cmd([str(BIN / "darkserver-import"), "enqueue", "--amqp-url", DEAD_BROKER,
                    "--spool", str(spool), "--instance", "lab"], check=False)
    assert down.returncode == 1
    assert "cannot queue: ConnectionRefusedError: [Errno 111] Connection refused" in down.stderr
    assert len(list(spool.glob("*.json"))) == 3
    cmd = [str(BIN / "darkserver-import"), "enqueue", "--amqp-url", AMQP, "--queue",
           queue.queue, "--spool", str(spool)]
    first = run_cmd(cmd, check=False)
    assert first.returncode == 1
    assert "build 601 was spooled without an instance: give --instance" in first.stderr
    assert "queued 2 spooled build(s)" in first.stdout
    second = run_cmd(cmd + ["--instance", "lab"])
    assert "queued 1 spooled build(s)" in second.stdout
    assert sorted((b["instance"], b["build"]) for _h, b in drain(queue)) == [
        ("lab", 601), ("lab", 602), ("lab", 603)]
    assert list(spool.glob("*.json")) == [] and not (spool / ".broker-down").exists()
    # The plugin's older one-file spool (JSON lines): sent, and only what could not be stays.
    old = tmp_path / "darkserver-spool.jsonl"
    old.write_text('{"instance": "primary", "build": 11}\nnot json\n'
                   '{"instance": "primary", "build": 12}\n')
    third = run_cmd([*cmd[:-1], str(old)], check=False)
    assert third.returncode == 1 and "line 2: not JSON" in third.stderr
    assert builds_in(queue) == [11, 12]
    assert old.read_text() == "not json\n"


def test_the_worker_imports_every_build_the_plugin_queued(
        plugin: ModuleType, conf: Path, hub: Hub, tmp_path: Path) -> None:
    """End to end: kojid, `koji import`, a content generator and a promoted draft, each fired
    through the plugin as kojihub fires them, queued on RabbitMQ, imported by the real
    ``darkserver-import worker`` from the test Koji hub, rows checked against readelf."""
    from tests.darkimport.queue.test_worker import _pipeline, expected_for
    from tests.helpers import wait_for
    from tests.kojihub import cached_rpms

    db = tmp_path / "e2e.sqlite3"
    pipeline = _pipeline(tmp_path, db, f"sqlite:///{db}")
    line = next(pipeline)
    try:
        configure(conf, AMQP, line.cfg.queue, instance="test")  # instance_json names it test
        line.counts()  # declares the queues, as the workers of a running deployment have
        made = {how: cached_rpms(f"push{how}") for how in ("kojid", "import", "cg", "draft")}
        builds = {how: line.hub.add_build(rpms, draft=how == "draft")
                  for how, rpms in made.items()}
        hub.request(lambda: kojid_build(dict(builds["kojid"])))
        hub.request(lambda: import_rpm(dict(builds["import"]), "src"))
        hub.request(lambda: import_rpm(dict(builds["import"]), "x86_64"))
        hub.request(lambda: cg_import(dict(builds["cg"])))
        draft = dict(builds["draft"])
        hub.request(lambda: kojid_build(draft))  # a draft: not queued
        line.hub.promote(draft["id"], dt.datetime.now(dt.UTC))
        hub.request(lambda: promote(draft))
        worker = line.worker("--status-interval", "1")
        wanted = expected_for([p for rpms in made.values() for p in rpms])
        wait_for("every build imported", lambda: line.rows() == wanted, timeout=180)
        wait_for("the queue to drain", lambda: line.counts()[line.cfg.queue] == 0)
        time.sleep(1.5)  # one more status line
        out = line.stop(worker)
        assert line.rows() == wanted
        assert line.counts() == {line.cfg.queue: 0, line.cfg.retry_queue: 0,
                                 line.cfg.dead_queue: 0}
        for how, build in builds.items():
            nvr = build["nvr"].split(",draft_")[0]
            assert f"{nvr}: " in out, how
        assert "draft" not in "".join(line for line in out.splitlines() if "skipped" in line)
        assert re.search(r"\(queued \d+\.\ds ago\)", out)
        assert re.search(r"0 ready, 0 waiting to retry, 0 dead-lettered; \d+ build\(s\) "
                         r"handled, waited", out)
        # 404 as a word of a message: the log lines' times once read ",404" (and a pid may).
        messages = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ ", "", out,
                          flags=re.M)
        assert not re.search(r"\b404\b", messages) and "NOT_FOUND" not in messages
    finally:
        pipeline.close()
