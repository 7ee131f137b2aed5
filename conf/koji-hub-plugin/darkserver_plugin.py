"""Koji hub plugin: queue every build that enters the hub for Darkserver (it ONLY enqueues).

What queues a build (kojihub 1.35; each build once per hub transaction, however many events):

* ``postImport`` type ``build`` (kojid finished it: ``host.completeBuild``), ``rpm`` (every
  ``import_rpm``: ``koji import``, koji-shadow, and the rpms of the other two), ``cg``
  (content generator import) and ``archive`` (``import_archive``): the build when COMPLETE and
  not a draft. A source rpm alone is not queued (it has no ELF files; its binaries queue it);
* ``postBuildPromote``: a draft that became a regular build (drafts are never queued before).

``createEmptyBuild`` fires only ``postBuildStateChange`` with the build COMPLETE and empty; the
later imports that fill it queue it, so state changes are not watched. Scratch builds never
enter the build table and so are never queued.

Callbacks only note the build on the request's ``context`` (cleared by the hub at every request);
``postCommit`` sends them once the hub's transaction is committed, so a worker that asks the hub
at once finds the build and its rpms. A transaction that rolls back never reaches ``postCommit``
and sends nothing.

Nothing may fail or hold up a build (an earlier darkserver plugin once broke Fedora's builds):
callbacks are ``ignore_error`` and catch everything themselves, the broker gets a short timeout,
and after a failure it is not tried again for ``backoff`` seconds. A build that cannot be sent is
written to the spool directory, one file per build, created atomically: any number of hub
processes and threads spool at once without a lock, and the directory (by default under the
hub's ``KojiDir``, which every hub frontend mounts) is seen by all frontends. The next
``postCommit`` on any hub process flushes it; so does ``darkserver-import enqueue --spool DIR``.
The plugin needs koji and pika only (python3-pika), not Darkserver.

Configuration (``DARKSERVER_KOJI_PLUGIN_CONF``, else ``/etc/koji-hub/plugins/darkserver.conf``),
section ``[queue]``: ``url``, ``queue``, ``instance`` (required: there is no default instance),
``spool``, ``timeout``, ``backoff``, ``batch``. A configuration that cannot be used is logged as
an error when the plugin loads; builds are then spooled until it is fixed (it is read again when
the file changes, no restart needed).
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
import uuid

import koji
from koji.context import context
from koji.plugin import callback, ignore_error

try:  # the hub may lack pika; then every build is spooled, with that reason
    import pika
    import pika.exceptions
except ImportError:  # pragma: no cover
    pika = None

CONFIG_FILE = os.environ.get("DARKSERVER_KOJI_PLUGIN_CONF",
                             "/etc/koji-hub/plugins/darkserver.conf")
ATTEMPTS = "x-darkserver-attempts"
SOURCE = "x-darkserver-source"
SPOOL_DIRNAME = "darkserver-spool"  # under the hub's KojiDir when ``spool`` is not set
DOWN_MARKER = ".broker-down"  # in the spool: mtime = last failure, text = its reason
FLUSH_LOCK = ".flush.lock"
IMPORT_TYPES = ("build", "rpm", "cg", "archive")
log = logging.getLogger("koji.plugin.darkserver")


class Settings:
    """The plugin configuration as read; ``problem`` says why builds cannot be sent."""

    def __init__(self, values, problem=""):
        self.url = values.get("url") or "amqp://guest:guest@127.0.0.1:5672/%2F"
        self.queue = values.get("queue") or "darkserver.builds"
        self.instance = values.get("instance") or ""
        self.spool = values.get("spool") or ""
        self.problem = problem
        self.timeout = self.backoff = 0.0
        self.batch = 0
        try:
            self.timeout = float(values.get("timeout") or 2)
            self.backoff = float(values.get("backoff") or 60)
            self.batch = int(values.get("batch") or 200)
        except ValueError as exc:
            self.problem = self.problem or f"bad number in [queue]: {exc}"
        if not self.problem and not self.instance:
            self.problem = ("no 'instance' in [queue]: name the Koji instance the workers know "
                            "this hub by (koji-instances.conf); there is no default")
        if self.spool and os.path.isfile(self.spool):
            log.error("darkserver: spool %s is a file (the old one-file spool): send what it "
                      "holds with `darkserver-import enqueue --spool %s` and set 'spool' to a "
                      "directory; using the default spool directory meanwhile",
                      self.spool, self.spool)
            self.spool = ""


_lock = threading.Lock()
_settings = None
_stamp = None  # (mtime, size) of the file the settings were read from; None = unreadable


def _file_stamp():
    try:
        st = os.stat(CONFIG_FILE)
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


def load_settings(force=False):
    """The settings, read again when the file changed; problems are logged once per change."""
    global _settings, _stamp
    with _lock:
        stamp = _file_stamp()
        if _settings is not None and not force and stamp == _stamp:
            return _settings
        _stamp = stamp
        try:
            conf = koji.read_config_files([(CONFIG_FILE, True)], raw=True)
            values = dict(conf.items("queue")) if conf.has_section("queue") else {}
            problem = "" if conf.has_section("queue") else "no [queue] section"
        except Exception as exc:
            values, problem = {}, f"{type(exc).__name__}: {exc}"
        _settings = Settings(values, problem)
        if _settings.problem:
            log.error("darkserver: configuration %s cannot be used (%s); builds will be "
                      "spooled to %s until it is fixed", CONFIG_FILE, _settings.problem,
                      _settings.spool or "the spool directory under the hub's KojiDir")
        else:
            log.info("darkserver: queueing builds as instance %r on %s at %s",
                     _settings.instance, _settings.queue, _redact(_settings.url))
        return _settings


def _redact(url):
    """The broker URL without its password, for logs."""
    head, sep, tail = url.partition("://")
    if "@" not in tail:
        return url
    creds, _, host = tail.rpartition("@")
    return "{}{}{}:***@{}".format(head, sep, creds.split(":")[0], host)


def spool_dir(settings):
    if settings.spool:
        return settings.spool
    opts = getattr(context, "opts", None) or {}
    return os.path.join(opts.get("KojiDir") or "/mnt/koji", SPOOL_DIRNAME)


# -- callbacks: note on the request context ----------------------------------------------------


def _note(build, why):
    if not isinstance(build, dict) or not build.get("id"):
        return
    if build.get("state") != koji.BUILD_STATES["COMPLETE"]:
        return
    if build.get("draft"):
        log.debug("darkserver: draft build %s not queued (queued when promoted)",
                  build.get("nvr"))
        return
    pending = getattr(context, "darkserver_pending", None)
    if pending is None:
        pending = context.darkserver_pending = {}
    pending.setdefault(int(build["id"]), (build.get("nvr") or "", why))


@callback("postImport")
@ignore_error
def darkserver_note_import(cbtype, *args, **kws):
    """A build, rpm, content-generator or archive import: note its build."""
    try:
        kind = kws.get("type")
        if kind not in IMPORT_TYPES:
            return
        if kind == "rpm" and (kws.get("rpm") or {}).get("arch") in ("src", "nosrc"):
            return
        _note(kws.get("build"), "postImport " + kind)
    except Exception:
        log.warning("darkserver: could not note an imported build", exc_info=True)


@callback("postBuildPromote")
@ignore_error
def darkserver_note_promote(cbtype, *args, **kws):
    """A draft became a regular build: note it (it was skipped while a draft)."""
    try:
        _note(kws.get("build"), "postBuildPromote")
    except Exception:
        log.warning("darkserver: could not note a promoted build", exc_info=True)


@callback("postCommit")
@ignore_error
def darkserver_send(cbtype, *args, **kws):
    """After the commit: send the noted builds, then what the spool holds; never raise."""
    try:
        pending = getattr(context, "darkserver_pending", None) or {}
        context.darkserver_pending = {}
        send(pending)
    except Exception:
        log.warning("darkserver: could not queue builds", exc_info=True)


# -- sending ---------------------------------------------------------------------------------


def send(pending):
    """Send ``{build_id: (nvr, why)}``; spool what cannot be sent; then flush the spool."""
    settings = load_settings()
    spool = spool_dir(settings)
    blocked = settings.problem or _backing_off(spool, settings)
    if pending and blocked:
        for build_id, (nvr, _why) in sorted(pending.items()):
            _spool(spool, settings.instance or None, build_id, nvr, blocked)
        return
    if pending:
        requests = [(settings.instance, b, nvr, why) for b, (nvr, why) in sorted(pending.items())]
        try:
            _publish(settings, [(i, b) for i, b, _n, _w in requests])
        except Exception as exc:
            reason = _reason(exc, settings)
            _mark_down(spool, reason)
            for instance, build_id, nvr, _why in requests:
                _spool(spool, instance, build_id, nvr, reason)
            return
        for instance, build_id, nvr, why in requests:
            log.info("darkserver: queued build %s %s (%s) as instance %r on %s", build_id, nvr,
                     why, instance, settings.queue)
    if not blocked:
        flush(settings, spool)


def _publish(settings, requests):
    """Publish ``[(instance, build_id)]`` with broker confirms on one connection."""
    if pika is None:
        raise RuntimeError("python3-pika is not installed on the hub")
    params = pika.URLParameters(settings.url)
    params.socket_timeout = settings.timeout
    params.stack_timeout = settings.timeout
    params.blocked_connection_timeout = settings.timeout
    params.connection_attempts = 1
    params.retry_delay = 0
    params.client_properties = {
        "connection_name": f"koji-hub darkserver {os.uname()[1]}:{os.getpid()}"}
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for instance, build_id in requests:
            body = json.dumps({"instance": instance, "build": build_id, "source": "hub"},
                              sort_keys=True)
            # The default exchange routes to the queue the workers declare; mandatory makes an
            # undeclared queue an error (spooled) instead of a silent loss.
            channel.basic_publish(
                "", settings.queue, body,
                pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     headers={ATTEMPTS: 0, SOURCE: "hub"},
                                     timestamp=int(time.time()), app_id="koji-hub",
                                     message_id=f"{instance}:{build_id}"),
                mandatory=True,
            )
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def _reason(exc, settings):
    """What went wrong, in words an operator can act on (pika's own messages can be empty)."""
    if pika is not None:
        if isinstance(exc, pika.exceptions.UnroutableError):
            return (f"queue {settings.queue!r} does not exist on the broker (a worker "
                    "declares it when it starts; check 'queue')")
        if isinstance(exc, pika.exceptions.ProbableAuthenticationError):
            return f"the broker refused the login (user/password in 'url'): {exc}"
        if isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
            return f"the broker refused access to the virtual host in 'url': {exc}"
    return f"broker {_redact(settings.url)} unavailable: {describe(exc)}"


def describe(exc):
    """``Type: message`` of the innermost cause: pika wraps the socket's error in one or two
    of its own, whose message is empty. The same rule as darkimport.queue.cli.describe_error,
    written twice on purpose: the plugin runs inside the hub, where Darkserver is not
    installed, and must import nothing of it."""
    while True:
        inner = getattr(exc, "exception", None)  # pika's connector errors keep it here
        if inner is None and len(exc.args) == 1:
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    detail = str(exc) or "; ".join(str(a) for a in exc.args if str(a)) or repr(exc)
    return f"{type(exc).__name__}: {detail}"


# -- back-off: a marker in the spool, so every process on every frontend backs off ------------


def _backing_off(spool, settings):
    """The reason to skip the broker now, or ''."""
    try:
        st = os.stat(os.path.join(spool, DOWN_MARKER))
    except OSError:
        return ""
    left = st.st_mtime + settings.backoff - time.time()
    if left <= 0:
        return ""
    try:
        with open(os.path.join(spool, DOWN_MARKER)) as marker:
            why = marker.read().strip()
    except OSError:
        why = "?"
    return f"broker not tried for another {left:.0f}s after a failure ({why})"


def _mark_down(spool, reason):
    try:
        _ensure_dir(spool)
        _write_atomically(spool, DOWN_MARKER, reason + "\n")
    except OSError as exc:
        log.warning("darkserver: cannot write %s: %s", os.path.join(spool, DOWN_MARKER), exc)


def _mark_up(spool):
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(spool, DOWN_MARKER))


# -- the spool: one file per build -----------------------------------------------------------


def spool_name(instance, build_id):
    return f"{instance or '_unset_'}.{int(build_id)}.json"


def _ensure_dir(path):
    try:
        os.makedirs(path, mode=0o775)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise


def _write_atomically(directory, name, text):
    # A name no other process or thread uses, renamed over the final name: readers see the old
    # file or the new one, never half of one, and two writers of one build leave one file.
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, os.path.join(directory, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _spool(spool, instance, build_id, nvr, reason):
    record = {"instance": instance, "build": int(build_id), "nvr": nvr,
              "spooled": time.time(), "reason": reason}
    try:
        _ensure_dir(spool)
        _write_atomically(spool, spool_name(instance, build_id), json.dumps(record) + "\n")
    except OSError as exc:
        log.error("darkserver: build %s %s LOST: cannot spool it to %s (%s); it was not sent "
                  "because %s; queue it with `darkserver-import enqueue --instance NAME %s`",
                  build_id, nvr, spool, exc, reason, build_id)
        return
    log.warning("darkserver: spooled build %s %s to %s: %s", build_id, nvr, spool, reason)


def read_spool(spool, limit):
    """``[(path, record)]``, oldest first; unreadable files are skipped and logged."""
    try:
        names = [n for n in os.listdir(spool) if n.endswith(".json") and not n.startswith(".")]
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(spool, name)
        try:
            with open(path) as f:
                record = json.load(f)
            found.append((os.stat(path).st_mtime, path, record))
        except (OSError, ValueError) as exc:
            log.warning("darkserver: skipping spool file %s: %s", path, exc)
    found.sort(key=lambda item: item[0])
    return [(path, record) for _t, path, record in found[:limit]]


def flush(settings, spool):
    """Send up to ``batch`` spooled builds; one process at a time per host (the others skip).
    Two flushers on different frontends may send a build twice, which the idempotent import
    absorbs; a file is removed only after the broker confirmed its message."""
    if not os.path.isdir(spool):
        return 0
    try:
        with open(os.path.join(spool, FLUSH_LOCK), "a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return 0  # another process is flushing
            return _flush_locked(settings, spool)
    except OSError as exc:
        log.warning("darkserver: cannot flush the spool %s: %s", spool, exc)
        return 0


def _flush_locked(settings, spool):
    todo = [(p, r) for p, r in read_spool(spool, settings.batch)
            if (r.get("instance") or settings.instance)]
    if not todo:
        return 0
    try:
        _publish(settings, [(r.get("instance") or settings.instance, r["build"])
                            for _p, r in todo])
    except Exception as exc:
        reason = _reason(exc, settings)
        _mark_down(spool, reason)
        log.warning("darkserver: could not flush %d spooled build(s) from %s: %s",
                    len(todo), spool, reason)
        return 0
    _mark_up(spool)
    for path, _r in todo:
        with contextlib.suppress(OSError):
            os.unlink(path)
    log.info("darkserver: flushed %d spooled build(s) from %s: %s", len(todo), spool,
             " ".join(str(r["build"]) for _p, r in todo))
    return len(todo)


# Read at load, so an unusable configuration is reported when the hub starts, not at the first
# build; never raise here (a plugin that fails to load takes the hub offline).
try:
    load_settings()
except Exception:  # pragma: no cover
    log.exception("darkserver: cannot read the configuration")
