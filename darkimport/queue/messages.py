"""The build queue on RabbitMQ (AMQP 0-9-1, pika).

Three durable queues, named from one base (default ``darkserver.builds``):

* ``BASE`` — work: one persistent JSON message per build, ``{"instance": ..., "build": ...}``.
  Consumers take one at a time (prefetch) and acknowledge only after the database commit; a
  worker that dies leaves its message unacknowledged and the broker hands it to another.
* ``BASE.retry`` — a failed attempt waits here (per-queue TTL) and then dead-letters back to
  ``BASE``. The attempt count travels in the ``x-darkserver-attempts`` header.
* ``BASE.dead`` — after ``max_attempts`` failures, or at once for a permanent failure (no such
  build, unreadable message), the message lands here with ``x-darkserver-reason``. Messages
  the broker itself rejects from ``BASE`` dead-letter here too.

Retrying is "publish a copy with attempts + 1, then ack the original", with publisher confirms,
so a crash between the two gives a duplicate, never a loss; duplicates are harmless because the
import is idempotent.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from darkcore import settings

DEFAULT_URL = settings.AMQP_URL.default
DEFAULT_QUEUE = settings.QUEUE.default
ATTEMPTS = "x-darkserver-attempts"
REASON = "x-darkserver-reason"
SOURCE = "x-darkserver-source"


class BadMessage(ValueError):
    """A queue message that is not a build request; it goes to the dead-letter queue."""


@dataclass(frozen=True, slots=True)
class QueueConfig:
    url: str = DEFAULT_URL
    queue: str = DEFAULT_QUEUE
    max_attempts: int = 5  # tries before the dead-letter queue, the first included
    retry_delay_ms: int = 60_000  # wait between tries
    prefetch: int = 1  # unacknowledged messages per consumer
    connect_timeout: float = 10.0

    @property
    def retry_queue(self) -> str:
        return self.queue + ".retry"

    @property
    def dead_queue(self) -> str:
        return self.queue + ".dead"

    @classmethod
    def from_settings(cls, **overrides: Any) -> QueueConfig:
        """``DARKSERVER_AMQP_URL``, ``DARKSERVER_QUEUE``, ``DARKSERVER_QUEUE_MAX_ATTEMPTS``,
        ``DARKSERVER_QUEUE_RETRY_DELAY_MS`` (or the same names in darkserver.conf [settings])."""
        values: dict[str, Any] = {
            "url": settings.AMQP_URL.get(),
            "queue": settings.QUEUE.get(),
            "max_attempts": settings.QUEUE_MAX_ATTEMPTS.get(),
            "retry_delay_ms": settings.QUEUE_RETRY_DELAY_MS.get(),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True, slots=True)
class BuildRequest:
    instance: str
    build: int | str  # Koji build id or N-V-R
    source: str = ""  # who asked: cli, fedmsg, hub, backfill

    def body(self) -> bytes:
        return json.dumps(
            {"instance": self.instance, "build": self.build, "source": self.source},
            sort_keys=True,
        ).encode()

    @classmethod
    def parse(cls, body: bytes) -> BuildRequest:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadMessage(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadMessage("want a JSON object")
        instance, build = data.get("instance"), data.get("build")
        if not isinstance(instance, str) or not instance:
            raise BadMessage("'instance' must be a non-empty string")
        if isinstance(build, bool) or not isinstance(build, (int, str)) or build in ("", 0):
            raise BadMessage("'build' must be a Koji build id or an N-V-R")
        return cls(instance, build, str(data.get("source", "")))


@dataclass(slots=True)
class Delivery:
    """A message as handed to a worker."""

    request: BuildRequest | None
    body: bytes
    attempts: int  # failed tries before this one
    headers: dict[str, Any] = field(default_factory=dict)
    redelivered: bool = False
    problem: str = ""  # why the body is not a build request (request is None then)


def parameters(cfg: QueueConfig, heartbeat: int | None = None, role: str = "client"
               ) -> pika.URLParameters:
    params = pika.URLParameters(cfg.url)
    # Shown by the management UI / rabbitmqctl list_connections user_provided_name.
    params.client_properties = {
        "connection_name": f"darkserver-{role} {os.uname().nodename}:{os.getpid()} {cfg.queue}"}
    params.socket_timeout = cfg.connect_timeout
    params.blocked_connection_timeout = max(cfg.connect_timeout, 30.0)
    if heartbeat is not None:
        params.heartbeat = heartbeat
    return params


def declare(channel: BlockingChannel, cfg: QueueConfig) -> None:
    channel.queue_declare(queue=cfg.dead_queue, durable=True)
    channel.queue_declare(
        queue=cfg.queue,
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": cfg.dead_queue},
    )
    # The retry delay is fixed when the retry queue is first declared (RabbitMQ refuses a
    # redeclaration with another TTL, 406): an existing retry queue is used as it is. Declared
    # on a channel of its own, which the refusal closes; nothing is asked that a first start
    # would answer with an error.
    probe = channel.connection.channel()
    try:
        probe.queue_declare(
            queue=cfg.retry_queue,
            durable=True,
            arguments={
                "x-message-ttl": cfg.retry_delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": cfg.queue,
            },
        )
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:
            raise
    finally:
        if probe.is_open:
            probe.close()


def properties(headers: dict[str, Any], message_id: str = "", timestamp: int | None = None
               ) -> pika.BasicProperties:
    """``timestamp``: when the build was first queued (kept across retries: the queue lag)."""
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        headers=headers,
        message_id=message_id or None,
        timestamp=timestamp if timestamp is not None else int(time.time()),
    )


class Publisher:
    """Publishes build requests, each confirmed by the broker before ``publish`` returns."""

    def __init__(self, cfg: QueueConfig) -> None:
        self.cfg = cfg
        self.connection = pika.BlockingConnection(parameters(cfg))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        declare(self.channel, cfg)

    def publish(self, request: BuildRequest) -> None:
        self.channel.basic_publish(
            exchange="",
            routing_key=self.cfg.queue,
            body=request.body(),
            properties=properties({ATTEMPTS: 0, SOURCE: request.source},
                                  f"{request.instance}:{request.build}"),
            mandatory=True,
        )

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def publisher(cfg: QueueConfig | None = None) -> Iterator[Publisher]:
    pub = Publisher(cfg or QueueConfig.from_settings())
    try:
        yield pub
    finally:
        pub.close()


def enqueue(requests: list[BuildRequest], cfg: QueueConfig | None = None) -> int:
    with publisher(cfg) as pub:
        for request in requests:
            pub.publish(request)
    return len(requests)


def counts(cfg: QueueConfig) -> dict[str, int]:
    """Ready messages in the work, retry and dead-letter queues (declares them if missing)."""
    connection = pika.BlockingConnection(parameters(cfg))
    try:
        channel = connection.channel()
        declare(channel, cfg)
        found = {}
        for name in (cfg.queue, cfg.retry_queue, cfg.dead_queue):
            frame = channel.queue_declare(queue=name, passive=True)
            found[name] = int(frame.method.message_count)
        return found
    finally:
        connection.close()
