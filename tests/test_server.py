"""The web service as deployed: gunicorn with uvicorn's worker (conf/gunicorn.conf.py) serving
darkserver.asgi over real HTTP, on an SQLite database that darkserver-import filled from the
real sample packages. (tests/test_createtable.py runs the same setup on MariaDB.)"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests import mariadb
from tests.helpers import BIN, get_json, gunicorn, run_cmd

MISSING = "ab" * 20


@pytest.fixture(scope="module")
def served(sample_set: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("served")
    env = {"DARKSERVER_DATABASE_URL": f"sqlite:///{work / 'web.sqlite3'}"}
    run_cmd([str(BIN / "darkserver"), "migrate", "--noinput"], env=env)
    run_cmd([str(BIN / "darkserver-import"), "--jobs", "2", str(sample_set.directory)], env=env)
    with gunicorn(env, workers=2) as base:  # metrics: conf/gunicorn.conf.py's own directory
        yield base


def request(base: str, method: str, path: str,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_the_default_server_is_uvicorns_worker(served: str) -> None:
    status, headers, _ = request(served, "GET", "/api/v1/health")
    assert status == 200 and headers["server"] == "uvicorn"


def test_every_sample_build_id_over_http(served: str, sample_set: Any) -> None:
    for expected in sample_set.expected:
        status, doc = get_json(f"{served}/api/v1/buildid/{expected.build_id.upper()}")
        assert status == 200, doc
        got = {(m["path"], m["package"]["nvra"]) for m in doc["matches"]}
        assert (expected.path, expected.nvra) in got
        status, rows = get_json(f"{served}/buildids/{expected.build_id}")
        assert status == 200
        assert (expected.build_id, expected.path, expected.nvra) in {
            (r["buildid"], r["elf"], r["rpm"]) for r in rows}


def test_batch_over_http(served: str, sample_set: Any) -> None:
    ids = sorted({e.build_id for e in sample_set.expected})
    status, doc = get_json(served + "/api/v1/buildids", {"buildids": [*ids, MISSING]})
    assert status == 200
    assert sorted(doc["results"]) == ids and doc["missing"] == [MISSING]
    for expected in sample_set.expected:
        paths = {m["path"] for m in doc["results"][expected.build_id]}
        assert expected.path in paths


def test_head_sends_the_get_headers_and_no_body(served: str, sample_set: Any) -> None:
    path = f"/api/v1/buildid/{sample_set.expected[0].build_id}"
    status, get_headers, body = request(served, "GET", path)
    head_status, head_headers, head_body = request(served, "HEAD", path)
    assert (status, head_status) == (200, 200)
    assert head_body == b"" and int(head_headers["content-length"]) == len(body)
    assert head_headers["content-type"] == get_headers["content-type"] == "application/json"


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("GET", "/api/v1/buildid/xyz", None, 400),
    ("GET", f"/api/v1/buildid/{MISSING}", None, 404),
    ("GET", "/api/v1/nothing-here", None, 404),
    ("DELETE", f"/api/v1/buildid/{MISSING}", None, 405),
    ("POST", "/api/v1/buildids", b"not json", 400),
    ("POST", "/api/v1/buildids", b'{"buildids": ["zz"]}', 400),
    ("POST", "/api/v1/buildids", b"x" * (3 * 1024 * 1024), 413),
])
def test_errors_are_json_with_their_status(served: str, method: str, path: str,
                                           body: bytes | None, status: int) -> None:
    got, headers, data = request(served, method, path, body)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert json.loads(data)["status"] == status


def test_django_routes_answer_beside_the_fast_path(served: str, sample_set: Any) -> None:
    status, stats = get_json(served + "/api/v1/stats")
    assert status == 200 and stats["elf_files"] == len(sample_set.expected)
    status, headers, page = request(served, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<form" in page


def test_metrics_count_the_lookups_of_both_workers(served: str, sample_set: Any) -> None:
    def served_lookups() -> float:
        _, _, text = request(served, "GET", "/metrics")
        found = re.search(rb'darkserver_http_requests_total\{method="GET",route="api-buildid",'
                          rb'status="200"\} ([0-9.e+]+)', text)
        return float(found.group(1)) if found else 0.0

    before = served_lookups()
    for _ in range(20):  # new connections: both workers take some
        request(served, "GET", f"/api/v1/buildid/{sample_set.expected[0].build_id}")
    assert served_lookups() == before + 20


def test_the_wsgi_setup_still_serves(sample_set: Any, tmp_path: Path) -> None:
    env = {"DARKSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'wsgi.sqlite3'}",
           "DARKSERVER_WORKER_CLASS": "gthread"}
    run_cmd([str(BIN / "darkserver"), "migrate", "--noinput"], env=env)
    run_cmd([str(BIN / "darkserver-import"), str(sample_set.directory)], env=env)
    expected = sample_set.expected[0]
    with gunicorn(env, app="darkserver.wsgi") as base:
        status, headers, body = request(base, "GET", f"/api/v1/buildid/{expected.build_id}")
        assert status == 200 and "server" in headers and headers["server"] != "uvicorn"
        assert expected.path in {m["path"] for m in json.loads(body)["matches"]}


@pytest.mark.mariadb
def test_lookups_survive_mariadb_killing_the_connections(sample_set: Any) -> None:
    """The server drops every connection of the web's (SELECT-only) user, as a restart or
    wait_timeout would: the next lookups are still answered, none fails."""
    with mariadb.scratch_database("ds_kill") as db:
        rw = {"DARKSERVER_DATABASE_URL": mariadb.url(db)}
        run_cmd([str(BIN / "darkserver"), "migrate", "--noinput"], env=rw)
        run_cmd([str(BIN / "darkserver-import"), str(sample_set.directory)], env=rw)
        expected = sample_set.expected[:5]
        # No answer cache: it would answer the lookups below without the killed connections.
        with mariadb.readonly_user(db) as (user, password), \
                gunicorn({"DARKSERVER_DATABASE_URL": mariadb.url(db, user, password),
                          "DARKSERVER_ANSWER_CACHE_MB": "0"}) as base:
            for row in expected:
                assert get_json(f"{base}/api/v1/buildid/{row.build_id}")[0] == 200
            root = mariadb.connect()
            cursor = root.cursor()
            cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s",
                           (user,))
            victims = [row[0] for row in cursor.fetchall()]
            assert len(victims) >= 2  # the fast path's own: single lookups and batches
            for victim in victims:
                cursor.execute(f"KILL {int(victim)}")
            root.close()
            for row in expected:
                status, doc = get_json(f"{base}/api/v1/buildid/{row.build_id}")
                assert status == 200, doc
                assert row.path in {m["path"] for m in doc["matches"]}
            status, doc = get_json(base + "/api/v1/buildids",
                                   {"buildids": [r.build_id for r in expected]})
            assert status == 200 and doc["missing"] == []
            status, doc = get_json(f"{base}/api/v1/stats")
            assert status == 200 and doc["elf_files"] > 0
            # Django's own connections last one request each (darkserver/asgi.py): however
            # many requests it answered, the web holds the fast path's two and no more.
            for row in expected * 4:
                assert get_json(f"{base}/api/v1/path?path={quote(row.path)}")[0] == 200
            root = mariadb.connect()
            cursor = root.cursor()
            cursor.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s",
                           (user,))
            assert cursor.fetchone()[0] == 2
            root.close()


def test_head_through_django_keeps_the_connection_usable(served: str) -> None:
    """Django's handler sends a body for HEAD; the server must drop it, or the next answer on
    the same keep-alive connection would be garbage."""
    parts = urlsplit(served)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        for method in ("HEAD", "GET", "HEAD", "GET"):
            conn.request(method, "/api/v1/stats")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200
            assert (body == b"") if method == "HEAD" else ("elf_files" in json.loads(body))
    finally:
        conn.close()
