"""A fedora-messaging consumer: COMPLETE Koji builds from the Fedora message bus into our queue.

    fedora-messaging --conf conf/fedora-messaging.toml consume \
        --callback=darkimport.queue.fedmsg_consumer:DarkserverConsumer

It only enqueues (a worker does the import). Messages that are not a build completing — other
topics, other states, a body without a usable build id — are dropped, never raised on: an
exception other than Nack/Drop would stop the consumer. When our own broker is unreachable the
message is handed back to the bus (Nack) after a short pause, so nothing is lost.

``[consumer_config]`` in the TOML file:

* ``darkserver_amqp_url`` — our work queue's broker (default: DARKSERVER_AMQP_URL, else local);
* ``darkserver_queue`` — the work queue (default ``darkserver.builds``);
* ``default_instance`` — Koji instance when the body names none (default ``primary``);
* ``instances`` — the Koji instances we import from; builds of others are dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fedora_messaging import config as fm_config
from fedora_messaging.exceptions import Drop, Nack

from darkimport.queue.messages import BuildRequest, Publisher, QueueConfig

log = logging.getLogger(__name__)

TOPIC_SUFFIX = "buildsys.build.state.change"
COMPLETE = 1


def build_request(topic: str, body: Any, default_instance: str = "primary"
                  ) -> BuildRequest | None:
    """The build request a bus message asks for; None when it asks for nothing."""
    if not topic.endswith(TOPIC_SUFFIX) or not isinstance(body, dict):
        return None
    if body.get("new") != COMPLETE:
        return None
    build_id = body.get("build_id")
    if isinstance(build_id, bool) or not isinstance(build_id, int) or build_id <= 0:
        return None
    instance = body.get("instance") or default_instance
    if not isinstance(instance, str):
        return None
    return BuildRequest(instance, build_id, "fedmsg")


class DarkserverConsumer:
    def __init__(self) -> None:
        conf: dict[str, Any] = dict(fm_config.conf.get("consumer_config") or {})
        overrides = {"url": conf.get("darkserver_amqp_url"), "queue": conf.get("darkserver_queue")}
        self.queue = QueueConfig.from_settings(**overrides)
        self.default_instance = str(conf.get("default_instance", "primary"))
        wanted = conf.get("instances")
        self.instances = set(wanted) if wanted else None
        self.retry_pause = float(conf.get("retry_pause", 5.0))
        self._publisher: Publisher | None = None
        self._lock = threading.Lock()  # fedora-messaging may call us from several threads

    def __call__(self, message: Any) -> None:
        try:
            request = build_request(str(message.topic), message.body, self.default_instance)
        except Exception as exc:  # a body that breaks our reading of it: drop, keep consuming
            log.warning("dropping message %s: %s", getattr(message, "id", "?"), exc)
            raise Drop() from exc
        if request is None:
            raise Drop()
        if self.instances is not None and request.instance not in self.instances:
            raise Drop()
        try:
            self._publish(request)
        except Exception as exc:  # our broker is down: give the message back to the bus
            log.warning("cannot queue build %s (%s); returning it to the bus", request.build, exc)
            time.sleep(self.retry_pause)
            raise Nack() from exc
        log.info("queued %s build %s", request.instance, request.build)

    def _publish(self, request: BuildRequest) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._publisher is None:
                        self._publisher = Publisher(self.queue)
                    self._publisher.publish(request)
                    return
                except Exception:
                    # A long-idle connection may have been closed by the broker: reconnect once.
                    if self._publisher is not None:
                        try:
                            self._publisher.close()
                        except Exception:
                            log.debug("closing a broken publisher failed", exc_info=True)
                    self._publisher = None
                    if attempt == 2:
                        raise
