"""Which database this process uses (Django's ``DATABASES`` entry), from the settings registry
(darkcore.settings) and the database sections of the INI files in the original format.

Nothing here imports Django, so the importer and tools can read the same configuration.

Database selection, first match wins:
1. ``DARKSERVER_DATABASE_URL`` (``sqlite:////abs/path.sqlite3`` or ``mysql://user:pass@host:port/db``);
2. the INI file of the process's role: the web reads ``[darkserverweb]`` from
   ``DARKSERVER_WEB_CONF`` (default ``/etc/darkserver/darkserverweb.conf``), the importer reads
   ``[darkserver]`` from ``DARKSERVER_CONF`` (default ``/etc/darkserver/darkserver.conf``);
3. an SQLite file in the user's data directory (``$XDG_DATA_HOME/darkserver/darkserver.sqlite3``).
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from darkcore import settings
from darkcore.settings import ConfigError

__all__ = ["ConfigError", "ROLE_IMPORTER", "ROLE_WEB", "data_dir", "database_settings",
           "ini_path", "read_ini", "role"]

ROLE_WEB = "web"
ROLE_IMPORTER = "importer"

# The role's INI file and its database section.
_INI = {
    ROLE_WEB: (settings.WEB_INI, "darkserverweb"),
    ROLE_IMPORTER: (settings.IMPORTER_INI, "darkserver"),
}


def role() -> str:
    """The process's role: the importer sets ``DARKSERVER_ROLE=importer`` before Django starts."""
    return settings.ROLE.get()


def data_dir() -> Path:
    home_share = os.path.join(os.path.expanduser("~"), ".local", "share")
    base = os.environ.get("XDG_DATA_HOME") or home_share
    return Path(base) / "darkserver"


def ini_path(for_role: str) -> Path:
    return settings.ini_path(_INI[for_role][0])


def read_ini(for_role: str) -> configparser.ConfigParser | None:
    return settings.ini_file(ini_path(for_role))


def database_from_url(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        name = unquote(parts.path)
        if not name or name == "/":
            raise ConfigError(f"DARKSERVER_DATABASE_URL {url!r} names no SQLite file")
        return _sqlite(name)
    if parts.scheme in ("mysql", "mariadb"):
        return _mysql(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/"),
        )
    raise ConfigError(
        f"DARKSERVER_DATABASE_URL scheme must be sqlite or mysql, not {parts.scheme!r}"
    )


def database_from_ini(parser: configparser.ConfigParser, section: str) -> dict[str, Any] | None:
    if not parser.has_section(section):
        return None
    sec = parser[section]
    engine = sec.get("engine", "mysql").strip().lower()
    if engine == "sqlite":
        return _sqlite(sec.get("database", str(data_dir() / "darkserver.sqlite3")))
    return _mysql(
        host=sec.get("host", "127.0.0.1"),
        port=sec.getint("port", 3306),
        user=sec.get("user", ""),
        password=sec.get("password", ""),
        database=sec.get("database", "darkserver"),
        socket=sec.get("socket", ""),
    )


def database_settings(for_role: str | None = None) -> dict[str, Any]:
    """The Django ``DATABASES['default']`` entry for this process."""
    url = settings.DATABASE_URL.get().strip()
    if url:
        return database_from_url(url)
    the_role = for_role or role()
    parser = read_ini(the_role)
    if parser is not None:
        found = database_from_ini(parser, _INI[the_role][1])
        if found is not None:
            return found
    return _sqlite(str(data_dir() / "darkserver.sqlite3"))


def replica_settings(for_role: str | None = None) -> list[dict[str, Any]]:
    """Django database entries of the read replicas the web reads from, in the order given.

    ``DARKSERVER_DATABASE_REPLICAS`` (comma-separated ``mysql://`` URLs), else ``replicas`` in
    the web INI's ``[darkserverweb]`` section; none by default. Only the web reads replicas: the
    importer writes to the primary alone.
    """
    raw = settings.DATABASE_REPLICAS.get() if settings.DATABASE_REPLICAS.source() == "env" else None
    if raw is None:
        the_role = for_role or role()
        parser = read_ini(the_role)
        section = _INI[the_role][1]
        raw = parser.get(section, "replicas", fallback="") if parser is not None else ""
    entries = []
    for url in (part.strip() for part in raw.split(",")):
        if not url:
            continue
        entry = database_from_url(url)
        if entry["ENGINE"] != "django.db.backends.mysql":
            raise ConfigError(f"a read replica must be a mysql:// URL, not {url!r}")
        # A replica that stops answering must cost a lookup seconds, not minutes: it is skipped
        # for the next one (darkserver/lookup/replicas.py), so fail fast.
        entry["OPTIONS"] |= {
            "connect_timeout": settings.REPLICA_CONNECT_TIMEOUT.get(),
            "read_timeout": settings.REPLICA_READ_TIMEOUT.get(),
        }
        # Tests run against the primary's test database; a replica has none of its own.
        entry["TEST"] = {"MIRROR": "default"}
        entries.append(entry)
    return entries


def _sqlite_mmap() -> int:
    """Bytes of the database file SQLite reads through mmap instead of read() calls.

    On a 10^7-row file a lookup touches a dozen pages spread over 2 GB; through read() each is
    a system call and a copy into SQLite's 2 MB cache. In-process, a fresh connection's first
    batches of 1,000 ids took ~140 ms through read() and ~11 ms through mmap; once warm the two
    were within the noise of a loaded machine. SQLite caps the value at its compile-time limit
    (2 GiB in Debian's build). The cost of mmap: an I/O error on the file becomes SIGBUS; 0
    turns it off.
    """
    return settings.SQLITE_MMAP.get()


def _sqlite(name: str) -> dict[str, Any]:
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        # Several importer processes may write while the web reads: wait instead of failing.
        "OPTIONS": {
            "timeout": 30,
            # Writers take the lock when the transaction starts: a read transaction that later
            # writes cannot be upgraded under contention and would fail at once.
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            f"PRAGMA mmap_size={_sqlite_mmap()}",
        },
        # Reconnecting and re-running the PRAGMAs costs as much as a lookup: keep connections.
        "CONN_MAX_AGE": None,
    }


def _mysql(
    host: str, port: int, user: str, password: str, database: str, socket: str = ""
) -> dict[str, Any]:
    options: dict[str, Any] = {"charset": "utf8mb4"}
    if socket:
        options["unix_socket"] = socket
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": database,
        "USER": user,
        "PASSWORD": password,
        "HOST": host,
        "PORT": str(port),
        "OPTIONS": options,
        # Persistent connections: connection setup is a large part of a millisecond lookup.
        "CONN_MAX_AGE": settings.CONN_MAX_AGE.get(),
        # A ping before every request costs ~0.1 ms; a dead connection is dropped at the end
        # of the request that hit it and the next request reconnects.
        "CONN_HEALTH_CHECKS": settings.CONN_HEALTH_CHECKS.get(),
    }
