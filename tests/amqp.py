"""Reading what a test put on the real RabbitMQ."""

from __future__ import annotations

from typing import Any

import pika

from darkcore.settings import TEST_AMQP_URL


def take_all(queue: str, url: str | None = None) -> list[tuple[Any, bytes]]:
    """Every message on ``queue`` now, removed from it: (properties, body) in queue order."""
    connection = pika.BlockingConnection(pika.URLParameters(url or TEST_AMQP_URL.get()))
    found = []
    try:
        channel = connection.channel()
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append((props, body))
    finally:
        connection.close()
