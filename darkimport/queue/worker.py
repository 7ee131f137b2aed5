"""``darkserver-import worker``: take build requests off the queue and import them.

Each worker process holds one AMQP connection and imports one build at a time. The import runs
in a helper thread while the connection's own thread keeps serving heartbeats (a large rpm can
take minutes); the result is handed back to the connection thread, which acknowledges the
message only then — after every rpm of the build is committed. A process killed mid-build never
acknowledges, so the broker redelivers the message; rpms already committed are not downloaded
again and never duplicated. Each such redelivery counts as an attempt: a build that kills every
worker that takes it ends in the dead-letter queue after ``max_attempts``.

``--concurrency N`` forks N such processes.

Stopping (SIGTERM/SIGINT) is prompt and bounded: the signal handlers only set a flag (no locks:
a process gets the signal twice, from its process group and forwarded by the parent, and a
handler interrupted by itself must not wait on a lock its first run holds); deliveries that
arrive while stopping are left unacknowledged; the build in hand gets ``stop_timeout`` seconds
to finish and be acknowledged, after which the process leaves without acknowledging it (the
broker hands it out again). Signals stay blocked across the fork until each process has its
handler, so a stop that comes during start-up is not lost or fatal.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from darkimport.queue.messages import (
    ATTEMPTS,
    REASON,
    BadMessage,
    BuildRequest,
    Delivery,
    QueueConfig,
    declare,
    parameters,
    properties,
)

log = logging.getLogger("darkimport.queue.worker")
# Queue depth and lag, every ``status_interval`` seconds: shown without --verbose.
status_log = logging.getLogger("darkimport.queue.status")

UNACKNOWLEDGED = "taken by a worker that never acknowledged it (it died or lost its connection)"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a message: ``done`` (ack), ``retry`` (later, attempts + 1) or ``dead``."""

    action: str
    reason: str = ""
    summary: str = ""


Handler = Callable[[Delivery], Verdict]

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
DEFAULT_STOP_TIMEOUT = 30.0  # seconds the build in hand gets to finish after a stop request


class StopFlag:
    """A stop request, set from signal handlers: a plain attribute, no lock to deadlock on."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int = signal.SIGTERM

    def set(self, signum: int = signal.SIGTERM) -> None:
        self.signum = signum
        self.requested = True

    def install(self) -> None:
        """Handle SIGTERM and SIGINT by setting the flag (and nothing else)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.set(signum)

    def sleep(self, seconds: float) -> None:
        """Sleep that ends early when a stop is requested."""
        deadline = time.monotonic() + seconds
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))


class Worker:
    """One consumer. ``handler`` does the work in a helper thread and returns a Verdict.

    ``stop`` may be shared with a signal handler; after a stop request the build in hand gets
    ``stop_timeout`` seconds, then ``run`` returns with ``abandoned`` set and the build not
    acknowledged (its thread may still be running: the caller should leave the process)."""

    def __init__(self, cfg: QueueConfig, handler: Handler, idle_exit: float | None = None,
                 max_messages: int | None = None, stop: StopFlag | None = None,
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT,
                 status_interval: float | None = 60.0) -> None:
        self.cfg = cfg
        self.status_interval = status_interval
        self._last_status = time.monotonic()
        self._lags: list[float] = []  # seconds each build since the last status waited
        self.handler = handler
        self.idle_exit = idle_exit
        self.max_messages = max_messages
        self.stop_timeout = stop_timeout
        self.handled = 0
        self.abandoned = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import")
        self._busy = threading.Event()
        self._last_activity = time.monotonic()
        self._stop = stop if stop is not None else StopFlag()
        self.connection: pika.BlockingConnection | None = None
        self.channel: BlockingChannel | None = None

    def run(self) -> int:
        self.connection = pika.BlockingConnection(parameters(self.cfg, role="worker"))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        declare(self.channel, self.cfg)
        self.channel.basic_qos(prefetch_count=self.cfg.prefetch)
        self.channel.basic_consume(self.cfg.queue, self._on_message)
        log.info("worker %d consuming %s", os.getpid(), self.cfg.queue)
        if self.status_interval is not None:
            self.log_status()
        try:
            while not self._stop.requested:
                self.connection.process_data_events(time_limit=1)
                if (self.idle_exit is not None and not self._busy.is_set()
                        and time.monotonic() - self._last_activity > self.idle_exit):
                    break
                if (self.status_interval is not None
                        and time.monotonic() - self._last_status >= self.status_interval):
                    self.log_status()
            # Let an import in flight finish and be acknowledged before leaving, for a while.
            deadline = time.monotonic() + self.stop_timeout
            while self._busy.is_set() and (left := deadline - time.monotonic()) > 0:
                self.connection.process_data_events(time_limit=min(1.0, left))
            if self._busy.is_set():
                # Not acknowledged: the broker hands the build out again once we close.
                self.abandoned = True
                log.warning("worker %d: build in hand not finished %.0fs after the stop "
                            "request; leaving it unacknowledged", os.getpid(),
                            self.stop_timeout)
        finally:
            self._executor.shutdown(wait=not self.abandoned, cancel_futures=True)
            if self.connection.is_open:
                self.connection.close()
        return self.handled

    def stop(self) -> None:
        """Finish the build in hand, then return from ``run`` (safe from a signal handler)."""
        self._stop.set()

    def log_status(self) -> dict[str, int]:
        """Log the queues' depth and how long the builds handled since last time waited."""
        self._last_status = time.monotonic()
        assert self.connection is not None
        depth: dict[str, int] = {}
        probe = self.connection.channel()  # a failed passive declare closes its channel
        try:
            for name in (self.cfg.queue, self.cfg.retry_queue, self.cfg.dead_queue):
                frame = probe.queue_declare(queue=name, passive=True)
                depth[name] = int(frame.method.message_count)
        except pika.exceptions.ChannelClosedByBroker as exc:
            status_log.warning("queue status unavailable: %s", exc)
            return depth
        finally:
            if probe.is_open:
                probe.close()
        lags, self._lags = self._lags, []
        waited = (f"{len(lags)} build(s) handled, waited {min(lags):.1f}-{max(lags):.1f}s "
                  "in the queue" if lags else "no builds handled")
        status_log.info("worker %d: %s ready, %d waiting to retry, %d dead-lettered; %s",
                        os.getpid(), depth[self.cfg.queue], depth[self.cfg.retry_queue],
                        depth[self.cfg.dead_queue], waited)
        return depth

    def _on_message(self, channel: BlockingChannel, method: Basic.Deliver,
                    props: BasicProperties, body: bytes) -> None:
        if self._stop.requested:
            return  # not started, not acknowledged: redelivered when the connection closes
        headers = dict(props.headers or {})
        if method.redelivered:
            self._count_unacknowledged(channel, method, props, body, headers)
            return
        self._busy.set()
        try:
            request: BuildRequest | None = BuildRequest.parse(body)
            problem = ""
        except BadMessage as exc:
            request, problem = None, str(exc)
        delivery = Delivery(request, body, _int(headers.get(ATTEMPTS)), headers,
                            bool(method.redelivered), problem)
        future = self._executor.submit(self._handle, delivery)
        assert self.connection is not None
        connection = self.connection
        future.add_done_callback(
            lambda f: connection.add_callback_threadsafe(
                functools.partial(self._settle, channel, method, props, body, delivery, f)
            )
        )

    def _count_unacknowledged(self, channel: BlockingChannel, method: Basic.Deliver,
                              props: BasicProperties, body: bytes,
                              headers: dict[str, Any]) -> None:
        """A redelivered message was taken by a worker that never acknowledged it: one that
        died (a crash, the OOM killer), lost its connection, or stopped before starting it.
        That counts as an attempt, so a build that kills every worker taking it ends in the
        dead-letter queue instead of going round forever. Below the limit the message goes to
        the back of the queue with its count (confirmed publish, then ack) and is imported
        when it comes round."""
        attempts = _int(headers.get(ATTEMPTS)) + 1
        reason = f"{UNACKNOWLEDGED} ({attempts} times)"
        dead = attempts >= self.cfg.max_attempts
        target = self.cfg.dead_queue if dead else self.cfg.queue
        log.warning("message %s: %s -> %s", props.message_id or method.delivery_tag, reason,
                    target)
        _forward(channel, method, props, body, headers | {ATTEMPTS: attempts, REASON: reason},
                 target)

    def _handle(self, delivery: Delivery) -> Verdict:
        if delivery.request is None:
            return Verdict("dead", f"unreadable message: {delivery.problem}")
        try:
            return self.handler(delivery)
        except Exception as exc:  # anything unforeseen (database down...): try again later
            log.exception("import failed")
            return Verdict("retry", f"{type(exc).__name__}: {exc}")

    def _settle(self, channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties,
                body: bytes, delivery: Delivery, future: Future[Verdict]) -> None:
        verdict = future.result()
        tag = method.delivery_tag
        what = delivery.request.build if delivery.request else "?"
        waited = ""
        if isinstance(props.timestamp, int) and props.timestamp > 0:
            # Enqueue time, kept across retries: the lag an operator cares about.
            lag = max(0.0, time.time() - props.timestamp)
            self._lags.append(lag)
            waited = f" (queued {lag:.1f}s ago)"
        if verdict.action == "retry" and delivery.attempts + 1 >= self.cfg.max_attempts:
            verdict = Verdict("dead", f"{verdict.reason} (after {delivery.attempts + 1} tries)")
        if verdict.action == "done":
            log.info("build %s: %s%s", what, verdict.summary or "done", waited)
            channel.basic_ack(tag)
        else:
            target = self.cfg.retry_queue if verdict.action == "retry" else self.cfg.dead_queue
            log.warning("build %s: %s -> %s%s", what, verdict.reason, target, waited)
            headers = {ATTEMPTS: delivery.attempts + 1, REASON: verdict.reason[:4000]}
            _forward(channel, method, props, body, delivery.headers | headers, target)
        self.handled += 1
        self._last_activity = time.monotonic()
        self._busy.clear()
        if self.max_messages is not None and self.handled >= self.max_messages:
            self._stop.set()


def _forward(channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties,
             body: bytes, headers: dict[str, Any], target: str) -> None:
    """Move a delivery to ``target`` with new headers. Confirmed publish first, ack second: a
    crash in between duplicates the message, never loses it."""
    channel.basic_publish("", target, body,
                          properties(headers, props.message_id or "", props.timestamp),
                          mandatory=True)
    channel.basic_ack(method.delivery_tag)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- the Koji import handler -----------------------------------------------------------------


class KojiHandler:
    """Imports the requested build from its Koji instance (one KojiSource per instance)."""

    def __init__(self, mode: str = "payload") -> None:
        from darkimport import djangosetup

        djangosetup.setup()
        from darkimport.koji.buildimport import default_store

        self.mode = mode
        self.store, self.exists = default_store()
        self.sources: dict[str, Any] = {}

    def source(self, instance: str) -> Any:
        from darkimport.koji.conf import get_instance
        from darkimport.koji.source import KojiSource

        if instance not in self.sources:
            self.sources[instance] = KojiSource(get_instance(instance))
        return self.sources[instance]

    def __call__(self, delivery: Delivery) -> Verdict:
        from darkcore.urltemplates import url_templates
        from darkimport.koji.buildimport import import_build
        from darkimport.koji.conf import KojiConfigError
        from darkimport.run.scan import ScanOptions
        from darkimport.run.store import close_old_connections

        request = delivery.request
        assert request is not None
        close_old_connections()
        try:
            source = self.source(request.instance)
        except KojiConfigError as exc:
            return Verdict("dead", str(exc))
        outcome = import_build(source, request.build, ScanOptions(url_templates=url_templates()),
                               mode=self.mode,  # type: ignore[arg-type]
                               store=self.store, exists=self.exists)
        if outcome.skipped:
            return Verdict("done", summary=f"skipped: {outcome.skipped}")
        if outcome.error:
            # A build the hub does not know will not appear by retrying.
            return Verdict("dead" if outcome.not_found else "retry", outcome.error)
        if outcome.failed:
            return Verdict("retry", outcome.reason())
        imported = sum(1 for r in outcome.rpms if r.status == "imported")
        return Verdict("done", summary=f"{outcome.nvr}: {imported} rpms imported, "
                                       f"{len(outcome.rpms) - imported} already present")


def run_workers(cfg: QueueConfig, concurrency: int, mode: str = "payload",
                idle_exit: float | None = None, max_messages: int | None = None,
                stop_timeout: float = DEFAULT_STOP_TIMEOUT,
                status_interval: float | None = 60.0) -> int:
    """Run ``concurrency`` worker processes until they exit (SIGTERM/SIGINT: finish, leave)."""
    if concurrency <= 1:
        return _one_worker(cfg, mode, idle_exit, max_messages, stop_timeout=stop_timeout,
                           status_interval=status_interval)
    ctx = multiprocessing.get_context("fork")
    stop = StopFlag()
    children = [
        ctx.Process(target=_child,
                    args=(cfg, mode, idle_exit, max_messages, stop_timeout, status_interval),
                    daemon=False)
        for _ in range(concurrency)
    ]
    # Blocked until every process has its handler: the children unblock in _one_worker.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        for child in children:
            child.start()
        stop.install()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    deadline: float | None = None
    while live := [c for c in children if c.exitcode is None]:
        if stop.requested and deadline is None:
            # The children may have had the signal too (process group); twice is harmless.
            for child in live:
                _signal(child, stop.signum)
            deadline = time.monotonic() + stop_timeout + 15
        if deadline is not None and time.monotonic() > deadline:
            for child in live:
                log.error("worker %s still running %.0fs after the stop request; killing it",
                          child.pid, stop_timeout + 15)
                _signal(child, signal.SIGKILL)
            for child in live:
                child.join(10)
            break
        multiprocessing.connection.wait([c.sentinel for c in live], timeout=0.5)
    return 0 if all(c.exitcode == 0 for c in children) else 1


def _signal(child: multiprocessing.process.BaseProcess, signum: int) -> None:
    if child.pid is not None and child.exitcode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)


def _child(cfg: QueueConfig, mode: str, idle_exit: float | None,
           max_messages: int | None, stop_timeout: float,
           status_interval: float | None) -> None:
    sys.exit(_one_worker(cfg, mode, idle_exit, max_messages, stop_timeout=stop_timeout,
                         status_interval=status_interval))


def _one_worker(cfg: QueueConfig, mode: str, idle_exit: float | None,
                max_messages: int | None, reconnect_delay: float = 5.0,
                stop_timeout: float = DEFAULT_STOP_TIMEOUT,
                status_interval: float | None = 60.0) -> int:
    """One consumer; when the broker goes away it reconnects (a message in flight then was
    never acknowledged, so the broker hands it out again)."""
    stop = StopFlag()
    stop.install()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by run_workers' fork
    handler = KojiHandler(mode)
    while not stop.requested:
        worker = Worker(cfg, handler, idle_exit=idle_exit, max_messages=max_messages,
                        stop=stop, stop_timeout=stop_timeout, status_interval=status_interval)
        try:
            worker.run()
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.ConnectionClosed,
                pika.exceptions.StreamLostError, pika.exceptions.ChannelClosed) as exc:
            log.warning("broker connection lost (%s); reconnecting in %.0fs", exc,
                        reconnect_delay)
            stop.sleep(reconnect_delay)
            continue
        if worker.abandoned:
            # The import thread is still running and would be waited for at exit.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return 0
    return 0
