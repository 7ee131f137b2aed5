"""Koji hub plugin: queue each imported build for Darkserver (it ONLY enqueues).

The build id is noted in ``postImport`` (type "build": the build and all its rpms are in the
hub's database, but not committed yet) and published in ``postCommit``, once the hub's
transaction is committed, so a worker that asks the hub at once sees the build COMPLETE with its
rpms. Nothing is published for a transaction that rolls back. Not ``postBuildStateChange``: it
fires for COMPLETE before the rpms are imported.

A Darkserver outage must never fail or slow a build (an earlier darkserver plugin once broke
Fedora's builds): every callback is marked ``ignore_error`` and also catches everything itself;
the broker connection has a short timeout; unsent ids go to a spool file and are sent first next
time. The plugin is self-contained (koji + pika), it does not need Darkserver installed on the hub.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os

import koji
from koji.context import context
from koji.plugin import callback, ignore_error

try:  # the hub may lack pika; then the plugin only logs
    import pika
except ImportError:  # pragma: no cover
    pika = None

CONFIG_FILE = os.environ.get("DARKSERVER_KOJI_PLUGIN_CONF",
                             "/etc/koji-hub/plugins/darkserver.conf")
ATTEMPTS = "x-darkserver-attempts"
SOURCE = "x-darkserver-source"
log = logging.getLogger("koji.plugin.darkserver")
_config = None


def get_config():
    global _config
    if _config is None:
        _config = koji.read_config_files([(CONFIG_FILE, True)], raw=True)
    return _config


def _option(name, default):
    conf = get_config()
    if conf.has_option("queue", name):
        return conf.get("queue", name)
    return default


@callback("postImport")
@ignore_error
def darkserver_note_build(cbtype, *args, **kws):
    """Remember the imported build; it is published after the commit."""
    try:
        if kws.get("type") != "build":
            return
        build = kws.get("build") or {}
        if build.get("state") not in (None, koji.BUILD_STATES["COMPLETE"]):
            return
        build_id = build.get("id") or kws.get("build_id")
        if not build_id:
            return
        pending = getattr(context, "darkserver_builds", None)
        if pending is None:
            pending = []
            context.darkserver_builds = pending
        if build_id not in pending:
            pending.append(int(build_id))
    except Exception:
        log.warning("darkserver: could not note an imported build", exc_info=True)


@callback("postCommit")
@ignore_error
def darkserver_publish(cbtype, *args, **kws):
    """After the commit: queue the noted builds (and any spooled ones); never raise."""
    try:
        pending = list(getattr(context, "darkserver_builds", None) or [])
        context.darkserver_builds = []
        if pending:
            send(pending)
    except Exception:
        log.warning("darkserver: could not queue builds", exc_info=True)


def send(build_ids):
    instance = _option("instance", "primary")
    spool = _option("spool", "")
    todo = _read_spool(spool) + [{"instance": instance, "build": b} for b in build_ids]
    try:
        _publish(todo)
    except Exception as exc:
        log.warning("darkserver: broker unavailable (%s); %d build(s) spooled", exc, len(todo))
        _write_spool(spool, todo)
        return False
    _write_spool(spool, [])
    return True


def _publish(requests):
    if pika is None:
        raise RuntimeError("python3-pika is not installed on the hub")
    timeout = float(_option("timeout", "2"))
    params = pika.URLParameters(_option("url", "amqp://guest:guest@127.0.0.1:5672/%2F"))
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    params.retry_delay = 0
    queue = _option("queue", "darkserver.builds")
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for request in requests:
            body = json.dumps({"instance": request["instance"], "build": request["build"],
                               "source": "hub"}, sort_keys=True)
            # The default exchange routes to the queue the workers declare; mandatory makes an
            # undeclared queue an error (spooled) instead of a silent loss.
            channel.basic_publish(
                "", queue, body,
                pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     headers={ATTEMPTS: 0, SOURCE: "hub"},
                                     message_id=f"{request['instance']}:{request['build']}"),
                mandatory=True,
            )
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def _read_spool(path):
    if not path or not os.path.exists(path):
        return []
    found = []
    with open(path) as spool:
        for line in spool:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def _write_spool(path, requests):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as spool:
        for request in requests:
            spool.write(json.dumps(request) + "\n")
    os.replace(tmp, path)
