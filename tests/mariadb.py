"""Scratch databases on the real MariaDB server for the tests that need one of their own.

The server comes from DARKSERVER_TEST_MYSQL_URL (default mysql://root:@127.0.0.1:3306/). When it
cannot be reached the tests fail with the reason: .ci/run starts MariaDB before the suite.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import MySQLdb

from darkcore.settings import TEST_MYSQL_URL

SERVER_URL = TEST_MYSQL_URL.get()


def _params() -> dict[str, Any]:
    parts = urlsplit(SERVER_URL)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }


def connect(database: str | None = None, **overrides: Any) -> Any:
    params = _params() | overrides
    if database:
        params["database"] = database
    try:
        return MySQLdb.connect(charset="utf8mb4", **params)
    except MySQLdb.OperationalError as exc:
        raise AssertionError(
            f"MariaDB at {params['host']}:{params['port']} is not reachable ({exc}); "
            "start it (.ci/run does) — these tests fail rather than skip"
        ) from exc


def url(database: str, user: str | None = None, password: str | None = None) -> str:
    p = _params()
    return (
        f"mysql://{user or p['user']}:{password if password is not None else p['password']}"
        f"@{p['host']}:{p['port']}/{database}"
    )


@contextlib.contextmanager
def scratch_database(prefix: str = "ds_test") -> Iterator[str]:
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = connect()
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield name
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@contextlib.contextmanager
def readonly_user(database: str) -> Iterator[tuple[str, str]]:
    """A user granted SELECT on one database and nothing else."""
    user, password = f"ro_{secrets.token_hex(4)}", secrets.token_hex(8)
    conn = connect()
    cur = conn.cursor()
    try:
        for host in ("127.0.0.1", "localhost"):
            cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT SELECT ON `{database}`.* TO '{user}'@'{host}'")
        yield user, password
    finally:
        for host in ("127.0.0.1", "localhost"):
            cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        conn.close()


def schema(database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, indexes and foreign keys as comparable rows."""
    conn = connect()
    cur = conn.cursor()
    queries = {
        "columns": """SELECT table_name, column_name, ordinal_position, column_type,
                      is_nullable, column_default, extra, character_set_name
                      FROM information_schema.columns WHERE table_schema=%s
                      ORDER BY table_name, ordinal_position""",
        "indexes": """SELECT table_name, index_name, seq_in_index, column_name, non_unique,
                      sub_part FROM information_schema.statistics WHERE table_schema=%s
                      ORDER BY table_name, index_name, seq_in_index""",
        "foreign_keys": """SELECT table_name, column_name, referenced_table_name,
                      referenced_column_name FROM information_schema.key_column_usage
                      WHERE table_schema=%s AND referenced_table_name IS NOT NULL
                      ORDER BY table_name, column_name""",
        "tables": """SELECT table_name, engine FROM information_schema.tables
                      WHERE table_schema=%s ORDER BY table_name""",
    }
    out = {}
    for key, sql in queries.items():
        cur.execute(sql, (database,))
        out[key] = list(cur.fetchall())
    conn.close()
    return out
