"""Read replicas on real MariaDB replication: the importer writes to the primary, the web reads
from the first healthy replica (darkserver/lookup/replicas.py), skipping one that lags, stopped
or cannot be reached, finally the primary, and going back to a replica once it is healthy.

Two kinds of replica: the one scripts/services.sh keeps beside the primary (127.0.0.1:3307,
every database), and throwaway replicas of one scratch database that these tests start, delay
and stop themselves (scripts/mariadb-replica.sh with a database argument).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import MySQLdb
import pytest

from darkcore import config
from darkcore.settings import TEST_REPLICA_URL
from tests import helpers, mariadb
from tests.helpers import BIN, free_port, get_json, gunicorn, run_cmd

pytestmark = pytest.mark.mariadb

ROOT = Path(__file__).resolve().parent.parent
REPLICA_URL = TEST_REPLICA_URL.get()
DEAD_PRIMARY = "mysql://root:@127.0.0.1:1/nowhere"  # a port nothing listens on


def _connect(url: str, database: str | None = None) -> Any:
    parts = urlsplit(url)
    params: dict[str, Any] = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
                              "user": parts.username or "root", "password": parts.password or ""}
    if database:
        params["database"] = database
    return MySQLdb.connect(charset="utf8mb4", connect_timeout=5, **params)


def replica_url(port: int, database: str) -> str:
    return f"mysql://root:@127.0.0.1:{port}/{database}"


def wait_for(what: str, check: Callable[[], bool]) -> None:
    # A replica being stopped, started or rebuilt refuses connections meanwhile.
    helpers.wait_for(what, check, timeout=30, not_yet=(Exception,))


def elf_rows(url: str, database: str) -> int:
    conn = _connect(url, database)
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM lookup_elffile")
        return int(cur.fetchone()[0])
    finally:
        conn.close()


def replica_sql(port: int, sql: str) -> None:
    conn = _connect(f"mysql://root:@127.0.0.1:{port}/")
    try:
        for statement in sql.split(";"):
            if statement.strip():
                conn.cursor().execute(statement)
    finally:
        conn.close()


class Replica:
    """A throwaway replica of one database of the primary, on its own port and datadir."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.port = free_port()
        # mariadbd runs as the mysql user, which cannot enter pytest's private temp folders.
        self.datadir = Path(tempfile.mkdtemp(prefix="ds-replica-", dir="/var/tmp"))
        self.url = replica_url(self.port, database)

    def start(self) -> None:
        primary_port = str(urlsplit(mariadb.SERVER_URL).port or 3306)
        run_cmd(["bash", str(ROOT / "scripts" / "mariadb-replica.sh"), primary_port,
                 str(self.port), str(self.datadir), self.database], timeout=120)

    def restart(self) -> None:
        """The same datadir again: it resumes replication where it stopped."""
        subprocess.run(
            ["start-stop-daemon", "--start", "--background", "--pidfile",
             str(self.datadir / "mysqld.pid"), "--exec", "/usr/sbin/mariadbd", "--",
             "--no-defaults", "--user=mysql", f"--datadir={self.datadir}",
             f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.datadir}/mysqld.sock", f"--pid-file={self.datadir}/mysqld.pid",
             f"--log-error={self.datadir}/error.log", f"--server-id={self.port}",
             "--skip-name-resolve", "--read-only=1", "--relay-log=relay-bin",
             f"--replicate-do-db={self.database}"],
            check=True,
        )
        wait_for("the replica to start again", lambda: bool(elf_rows(self.url, self.database)))

    def kill(self) -> None:
        pid = int((self.datadir / "mysqld.pid").read_text())
        os.kill(pid, 9)
        wait_for("the replica to die", lambda: not Path(f"/proc/{pid}").exists())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.kill()
        shutil.rmtree(self.datadir, ignore_errors=True)
        for leftover in (Path(f"{self.datadir}.install.log"), Path(f"{self.datadir}.seed.sql")):
            leftover.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def primary(sample_set: Any) -> Iterator[str]:
    """A scratch database on the primary, migrated and filled by the importer."""
    with mariadb.scratch_database("ds_repl") as database:
        env = {"DARKSERVER_DATABASE_URL": mariadb.url(database)}
        run_cmd([str(BIN / "darkserver"), "migrate", "--noinput"], env=env)
        imported = run_cmd([str(BIN / "darkserver-import"), "--json", "--jobs", "2",
                            str(sample_set.directory)], env=env, check=False)
        assert imported.returncode == 0, imported.stderr
        yield database


@pytest.fixture
def throwaway(primary: str) -> Iterator[Replica]:
    replica = Replica(primary)
    try:
        replica.start()
        wait_for("the throwaway replica to catch up",
                 lambda: elf_rows(replica.url, primary) == elf_rows(mariadb.url(primary), primary))
        yield replica
    finally:
        replica.stop()


def web_env(primary_url: str, *replica_urls: str, **extra: str) -> dict[str, str]:
    return {
        "DARKSERVER_DATABASE_URL": primary_url,
        "DARKSERVER_DATABASE_REPLICAS": ",".join(replica_urls),
        "DARKSERVER_REPLICA_CHECK_SECONDS": "0.2",
        **extra,
    }


def ready(base: str) -> dict[str, Any]:
    """/api/v1/health/ready, checked against the server's own OpenAPI document."""
    _status, doc = get_json(base + "/api/v1/health/ready")
    _status, spec = get_json(base + "/api/v1/openapi.json")
    schema = {"$ref": "#/components/schemas/Readiness", "components": spec["components"]}
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert isinstance(doc, dict)
    return doc


def assert_every_sample_answered(base: str, sample_set: Any) -> None:
    for expected in sample_set.expected:
        status, rows = get_json(f"{base}/buildids/{expected.build_id}")
        assert status == 200
        assert (expected.build_id, expected.path, expected.nvra) in {
            (r["buildid"], r["elf"], r["rpm"]) for r in rows
        }
    ids = [e.build_id for e in sample_set.expected]
    status, batch = get_json(base + "/api/v1/buildids", {"buildids": ids})
    assert status == 200 and batch["missing"] == []


def test_the_services_replica_replicates_every_database_with_gtid() -> None:
    conn = _connect(REPLICA_URL)
    try:
        cur = conn.cursor(MySQLdb.cursors.DictCursor)
        cur.execute("SHOW SLAVE STATUS")
        status = cur.fetchone()
    finally:
        conn.close()
    assert status is not None, f"{REPLICA_URL} is not a replica (scripts/services.sh makes it)"
    assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
    assert status["Using_Gtid"] == "Slave_Pos"
    # Every database but the benchmarks' (darkserver_bench*: up to 14 GB, primary only).
    assert status["Replicate_Do_DB"] == "" and status["Replicate_Ignore_DB"] == ""
    assert status["Replicate_Wild_Ignore_Table"] == "darkserver\\_bench%.%"


def test_a_package_imported_on_the_primary_is_answered_from_the_replica(
        primary: str, sample_set: Any) -> None:
    root_on_replica = REPLICA_URL.rstrip("/") + "/" + primary
    wait_for("the services replica to catch up",
             lambda: elf_rows(root_on_replica, primary) == elf_rows(mariadb.url(primary), primary))
    # The web's user as README's deployment section grants it: SELECT on the database, and
    # SLAVE MONITOR to read the replica's lag. Created on the primary, it reaches the replica
    # through replication like everything else.
    with contextlib.ExitStack() as stack:
        user, password = stack.enter_context(mariadb.readonly_user(primary))
        conn = mariadb.connect()
        for host in ("127.0.0.1", "localhost"):
            conn.cursor().execute(f"GRANT SLAVE MONITOR ON *.* TO '{user}'@'{host}'")
        conn.close()
        parts = urlsplit(REPLICA_URL)
        replica = f"mysql://{user}:{password}@{parts.hostname}:{parts.port or 3306}/{primary}"
        wait_for("the web user to reach the replica", lambda: elf_rows(replica, primary) > 0)
        # The web cannot reach the primary at all: every answer comes from the replica.
        base = stack.enter_context(gunicorn(web_env(DEAD_PRIMARY, replica)))
        assert_every_sample_answered(base, sample_set)
        doc = ready(base)
        assert doc["status"] == "ok" and doc["reading_from"] == "replica1"
        assert doc["databases"]["default"]["status"].startswith("unreachable")
        assert doc["databases"]["replica1"]["status"] == "ok"
        assert doc["databases"]["replica1"]["lag_seconds"] is not None


def test_a_replica_stopped_under_load_costs_no_lookup(
        primary: str, throwaway: Replica, sample_set: Any) -> None:
    ids = [e.build_id for e in sample_set.expected]
    with gunicorn(web_env(mariadb.url(primary), throwaway.url), workers=2) as base:
        assert ready(base)["reading_from"] == "replica1"
        failures: list[str] = []
        answered = [0]
        stop = threading.Event()

        def load() -> None:
            i = 0
            while not stop.is_set():
                build_id = ids[i % len(ids)]
                i += 1
                try:
                    if i % 5 == 0:
                        status, doc = get_json(base + "/api/v1/buildids", {"buildids": ids})
                        ok = status == 200 and doc["missing"] == []
                    else:
                        status, rows = get_json(f"{base}/buildids/{build_id}")
                        ok = status == 200 and any(r["buildid"] == build_id for r in rows)
                except Exception as exc:  # a reset connection or a timeout is a lost lookup
                    status, ok = repr(exc), False
                if ok:
                    answered[0] += 1
                else:
                    failures.append(f"{build_id}: {status}")

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        before = answered[0]
        throwaway.kill()
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert failures == []
        assert before > 0 and answered[0] > before  # lookups went on after the replica died
        doc = ready(base)
        assert doc["reading_from"] == "default"
        assert doc["databases"]["replica1"]["status"].startswith(("unreachable", "query failed"))
        # Back once it is healthy again.
        throwaway.restart()
        wait_for("reads to go back to the replica",
                 lambda: ready(base)["reading_from"] == "replica1")
        assert_every_sample_answered(base, sample_set)


def test_a_lagging_replica_is_skipped_for_the_next_then_comes_back(
        primary: str, throwaway: Replica, sample_set: Any) -> None:
    services_replica = REPLICA_URL.rstrip("/") + "/" + primary
    env = web_env(mariadb.url(primary), throwaway.url, services_replica,
                  DARKSERVER_REPLICA_MAX_LAG="1")
    with gunicorn(env) as base:
        assert ready(base)["reading_from"] == "replica1"
        replica_sql(throwaway.port, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=60; START SLAVE")
        try:
            # Any write on the primary: the delayed replica falls behind, more every second.
            conn = mariadb.connect(primary)
            conn.cursor().execute("CREATE TABLE lag_marker (x INT)")
            conn.close()
            wait_for("the lagging replica to be skipped",
                     lambda: ready(base)["reading_from"] == "replica2")
            state = ready(base)["databases"]["replica1"]
            assert state["status"].startswith("lagging") and state["lag_seconds"] > 1
            assert_every_sample_answered(base, sample_set)
        finally:
            # Caught up at once without the delay: healthy again.
            replica_sql(throwaway.port, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE")
        wait_for("the replica to catch up and come back",
                 lambda: ready(base)["reading_from"] == "replica1")


def test_with_no_healthy_replica_the_primary_answers(
        primary: str, throwaway: Replica, sample_set: Any) -> None:
    replica_sql(throwaway.port, "STOP SLAVE SQL_THREAD")
    dead_replica = replica_url(free_port(), primary)
    with gunicorn(web_env(mariadb.url(primary), dead_replica, throwaway.url)) as base:
        doc = ready(base)
        assert doc["reading_from"] == "default"
        assert doc["databases"]["replica1"]["status"].startswith("unreachable")
        assert doc["databases"]["replica2"]["status"].startswith("replication stopped")
        assert_every_sample_answered(base, sample_set)
        replica_sql(throwaway.port, "START SLAVE SQL_THREAD")
        wait_for("the replica to come back", lambda: ready(base)["reading_from"] == "replica2")


def test_a_replica_must_be_mariadb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARKSERVER_DATABASE_REPLICAS", "sqlite:////tmp/x.sqlite3")
    with pytest.raises(config.ConfigError, match="mysql:// URL"):
        config.replica_settings()
    monkeypatch.setenv("DARKSERVER_DATABASE_REPLICAS", " mysql://a@h1:3307/d , mysql://b@h2/d,")
    found = config.replica_settings()
    assert [(e["HOST"], e["PORT"], e["USER"]) for e in found] == [("h1", "3307", "a"),
                                                                 ("h2", "3306", "b")]
    assert all(e["TEST"] == {"MIRROR": "default"} for e in found)


def test_replicas_come_from_the_web_ini_when_the_environment_has_none(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ini = tmp_path / "darkserverweb.conf"
    ini.write_text("[darkserverweb]\nengine=mysql\nhost=db1\n"
                   "replicas=mysql://web:pw@db2:3307/darkserver,\n"
                   "         mysql://web:pw@db3/darkserver\n")
    monkeypatch.delenv("DARKSERVER_DATABASE_REPLICAS", raising=False)
    monkeypatch.setenv("DARKSERVER_WEB_CONF", str(ini))
    found = config.replica_settings(config.ROLE_WEB)
    assert [(e["HOST"], e["PORT"], e["NAME"]) for e in found] == [("db2", "3307", "darkserver"),
                                                                 ("db3", "3306", "darkserver")]
    assert all(e["OPTIONS"]["connect_timeout"] == 2 for e in found)
