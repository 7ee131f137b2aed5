"""Declaring the queues on the real RabbitMQ: a first start asks nothing the broker answers with
an error, and an existing retry queue with another delay is used as it is."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pika
import pytest

from darkcore.settings import TEST_AMQP_URL
from darkimport.queue.messages import QueueConfig, declare

AMQP = TEST_AMQP_URL.get()


@pytest.fixture
def channel() -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    yield connection.channel()
    connection.close()


def test_declaring_fresh_queues_logs_no_broker_error_and_keeps_an_existing_retry_delay(
        channel: pika.adapters.blocking_connection.BlockingChannel,
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = QueueConfig(url=AMQP, queue=f"darkserver.test.{uuid.uuid4().hex[:12]}",
                      retry_delay_ms=1500)
    try:
        with caplog.at_level(logging.DEBUG, "pika"):
            declare(channel, cfg)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        # Declared again with another delay (a worker started with --retry-delay): no error,
        # the queue keeps the delay it was created with.
        declare(channel, QueueConfig(url=AMQP, queue=cfg.queue, retry_delay_ms=99))
        assert channel.is_open
        probe = channel.connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            probe.queue_declare(queue=cfg.retry_queue, durable=True, arguments={
                "x-message-ttl": 99, "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": cfg.queue})
        assert refused.value.reply_code == 406  # still 1500 ms
        for name in (cfg.queue, cfg.retry_queue, cfg.dead_queue):
            assert channel.queue_declare(queue=name, passive=True).method.message_count == 0
    finally:
        for name in (cfg.queue, cfg.retry_queue, cfg.dead_queue):
            channel.queue_delete(name)
