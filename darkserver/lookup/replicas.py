"""Which database the web reads from: the first healthy read replica, in the configured order,
else the primary.

Replication itself is MariaDB's (GTID replication; docs/DEPLOYMENT.md); this module only
chooses. A replica is healthy when it answers and ``SHOW SLAVE STATUS`` says both replication
threads run and ``Seconds_Behind_Master`` is within ``DARKSERVER_REPLICA_MAX_LAG``. Health is
checked at most once per ``DARKSERVER_REPLICA_CHECK_SECONDS`` per alias and process, so a
replica that was skipped comes back by itself once it is healthy again. A query that fails on
a replica marks it down at once and runs again on the next choice (``failover``), so a replica
that stops under load costs no lookup.

The web's database user needs ``SLAVE MONITOR`` (MariaDB's name for the right to run ``SHOW
SLAVE STATUS``) on a replica; without it the replica is reported and skipped, never trusted
blindly.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections

log = logging.getLogger(__name__)

DEFAULT_DB_ALIAS = "default"  # the primary (django.db.DEFAULT_DB_ALIAS, typed)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Health:
    ok: bool
    lag: float | None  # seconds behind the primary; None when unknown
    reason: str  # "ok", or why the replica is skipped
    checked: float  # time.monotonic() of the check


_health: dict[str, Health] = {}
_checking: dict[str, threading.Lock] = {}
_checking_guard = threading.Lock()


def replicas() -> list[str]:
    return list(settings.READ_REPLICAS)


def read_alias() -> str:
    """The database to read from now: the first healthy replica, else the primary."""
    for alias in replicas():
        if health(alias).ok:
            return alias
    return DEFAULT_DB_ALIAS


def health(alias: str) -> Health:
    """The replica's health, checked anew when the last check is older than the interval.

    While one thread checks, the others use the previous answer (a replica that never answered
    counts as down until its first check is done): a check blocks at most one request.
    """
    known = _health.get(alias)
    if known is not None and not _stale(known):
        return known
    with _checking_guard:
        lock = _checking.setdefault(alias, threading.Lock())
    if not lock.acquire(blocking=known is None):
        return known  # type: ignore[return-value]  # known is not None when not blocking
    try:
        known = _health.get(alias)
        if known is None or _stale(known):
            known = _check(alias)
            previous = _health.get(alias)
            if previous is None or previous.ok != known.ok:
                log.warning("read replica %s: %s", alias, known.reason)
            _health[alias] = known
        return known
    finally:
        lock.release()


def _stale(known: Health) -> bool:
    return time.monotonic() - known.checked >= float(settings.DARKSERVER_REPLICA_CHECK_SECONDS)


def _check(alias: str) -> Health:
    now = time.monotonic()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            row = cursor.fetchone()
            columns = [d[0] for d in cursor.description or ()]
    except DatabaseError as exc:
        _close(alias)
        return Health(False, None, f"unreachable: {_reason(exc)}", now)
    if row is None:
        # Not a replica (a primary, a Galera node): it is as current as it gets.
        return Health(True, 0.0, "ok", now)
    status = dict(zip(columns, row, strict=False))
    if status.get("Slave_IO_Running") != "Yes" or status.get("Slave_SQL_Running") != "Yes":
        why = status.get("Last_SQL_Error") or status.get("Last_IO_Error") or "threads stopped"
        return Health(False, None, f"replication stopped: {why}", now)
    lag = status.get("Seconds_Behind_Master")
    if lag is None:
        return Health(False, None, "replication stopped: lag unknown", now)
    lag = float(lag)
    if lag > settings.DARKSERVER_REPLICA_MAX_LAG:
        limit = settings.DARKSERVER_REPLICA_MAX_LAG
        return Health(False, lag, f"lagging {lag:g} s behind the primary (limit {limit:g} s)", now)
    return Health(True, lag, "ok", now)


def mark_down(alias: str, reason: str, close: bool = True) -> None:
    """A query on ``alias`` failed: skip it until its next check. ``close=False`` from the
    event loop, where Django's connections may not be touched."""
    if alias == DEFAULT_DB_ALIAS:
        return
    log.warning("read replica %s: %s; reading from the next database", alias, reason)
    _health[alias] = Health(False, None, reason, time.monotonic())
    if close:
        _close(alias)


def failover(func: Callable[P, R]) -> Callable[P, R]:
    """Run a read on the chosen database; when it fails there and that was a replica, mark the
    replica down and run it again on the next choice (finally the primary, whose errors
    propagate)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        while True:
            alias = read_alias()
            try:
                return func(*args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                if alias == DEFAULT_DB_ALIAS:
                    raise
                mark_down(alias, f"query failed: {_reason(exc)}")

    return wrapper


def describe() -> dict[str, Any]:
    """Every database the web may read, for /api/v1/health/ready."""
    out: dict[str, Any] = {}
    for alias in replicas():
        state = health(alias)
        out[alias] = {"role": "replica", "host": host(alias), "status": state.reason,
                      "lag_seconds": state.lag}
    return out


def host(alias: str) -> str:
    entry = settings.DATABASES[alias]
    return f"{entry.get('HOST') or 'localhost'}:{entry.get('PORT') or 3306}/{entry.get('NAME')}"


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _close(alias: str) -> None:
    try:
        connections[alias].close()
    except Exception:  # a broken connection may fail to close; it is dropped either way
        log.debug("closing %s failed", alias, exc_info=True)


class ReplicaRouter:
    """Django database router: reads from ``read_alias()``, writes and migrations to the primary
    (the web never writes; the importer has no replicas configured)."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return read_alias()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS
