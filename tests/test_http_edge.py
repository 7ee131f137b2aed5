"""The HTTP edge of the default server setup (gunicorn -c conf/gunicorn.conf.py, the edge worker
of darkserver/httpedge.py, darkserver.asgi) against raw sockets: what the HTTP layer rejects is
JSON too, a stalled client is cut off, a client error is one bounded log line, a database that
cannot be reached is a 503 on every read route, and /metrics adds up every worker, recycled
ones included."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from tests.helpers import BIN, get_json, gunicorn, run_cmd

T = TypeVar("T")
MISSING = "ab" * 20
READ_TIMEOUT = 2  # seconds; the default is 30


@pytest.fixture(scope="module")
def edge(sample_set: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A served sample database with a short read timeout; (base URL, the server's log)."""
    work = tmp_path_factory.mktemp("edge")
    env = {"DARKSERVER_DATABASE_URL": f"sqlite:///{work / 'web.sqlite3'}",
           "DARKSERVER_READ_TIMEOUT": str(READ_TIMEOUT), "DARKSERVER_LOG_LEVEL": "warning"}
    run_cmd([str(BIN / "darkserver"), "migrate", "--noinput"], env=env)
    run_cmd([str(BIN / "darkserver-import"), str(sample_set.directory)], env=env)
    log = work / "server.log"
    with gunicorn(env, workers=2, log=log) as base:
        yield base, log


def exchange(base: str, data: bytes, wait: float = 15) -> tuple[bytes, float]:
    """Send raw bytes, read until the server closes; the answer and the seconds it took."""
    parts = urlsplit(base)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:  # the server closed with our bytes still unread
            pass
    return received, time.monotonic() - started


def answer(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def get(path: bytes, *headers: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n" + b"".join(
        h + b"\r\n" for h in headers) + b"Connection: close\r\n\r\n"


TWO_THOUSAND_IDS = ",".join(f"{n:040x}" for n in range(2000)).encode()
NESTED = b'{"buildids": ' + b"[" * 1000 + b"]" * 1000 + b"}"


@pytest.mark.parametrize(("request_bytes", "status", "says"), [
    (get(b"/buildids/" + TWO_THOUSAND_IDS), 414, "POST them to /api/v1/buildids"),
    (get(b"/buildids/\xff\xfe\xfd"), 400, "malformed HTTP request"),
    (b"POST /api/v1/buildids HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n{}", 400,
     "Content-Length"),
    (get(b"/api/v1/health", b"X-Big: " + b"a" * 200_000), 431, "headers larger than"),
    (b"POST /api/v1/buildids HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n\r\n", 413,
     "request body too large"),
    (b"POST /api/v1/buildids HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
     b"Content-Length: %d\r\n\r\n" % len(NESTED) + NESTED, 400, "nested too deeply"),
    (b"POST /api/v1/buildid/zz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405,
     "method POST not allowed"),
    (get(b"/api/v1/buildid/" + b"z" * 60_000), 400, "malformed build-id"),
], ids=["2000-ids-url", "raw-bytes", "bad-content-length", "huge-header", "huge-body",
        "nested-json", "method-before-id", "long-bad-id"])
def test_every_rejection_is_json(edge, request_bytes: bytes, status: int, says: str) -> None:
    base, _log = edge
    raw, _seconds = exchange(base, request_bytes)
    got, headers, doc = answer(raw)
    assert (got, headers["content-type"], doc["status"]) == (status, "application/json", status)
    assert says in doc["error"]


def test_a_chunked_batch_is_answered_like_any_other(edge, sample_set: Any) -> None:
    base, _log = edge
    body = json.dumps({"buildids": [sample_set.expected[0].build_id, MISSING]}).encode()
    raw, _ = exchange(base, b"POST /api/v1/buildids HTTP/1.1\r\nHost: t\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                      b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    status, _, doc = answer(raw)
    assert status == 200 and doc["missing"] == [MISSING]
    assert list(doc["results"]) == [sample_set.expected[0].build_id]
    too_big = b"x" * (3 * 1024 * 1024)  # over DARKSERVER_MAX_BODY's 2 MiB
    raw, _ = exchange(base, b"POST /api/v1/buildids HTTP/1.1\r\nHost: t\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                      % (len(too_big), too_big))
    assert answer(raw)[0] == 413


@pytest.mark.parametrize("partial", [
    b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n",  # the head never ends
    b"POST /api/v1/buildids HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n{\"buil",
], ids=["stalled-head", "stalled-body"])
def test_a_stalled_request_is_cut_off_with_a_408(edge, partial: bytes) -> None:
    base, _log = edge
    raw, seconds = exchange(base, partial, wait=READ_TIMEOUT + 30)
    status, _, doc = answer(raw)
    assert (status, doc["status"]) == (408, 408)
    assert READ_TIMEOUT - 0.5 <= seconds < READ_TIMEOUT + 10


def test_a_connection_that_sends_nothing_is_closed(edge) -> None:
    base, _log = edge
    raw, seconds = exchange(base, b"", wait=READ_TIMEOUT + 30)
    assert raw == b"" and seconds < READ_TIMEOUT + 10


def test_a_client_error_is_one_bounded_log_line(edge) -> None:
    base, log = edge
    marker = "feedface" * 4
    before = log.read_text().count("\n")
    exchange(base, get(b"/api/v1/buildid/" + marker.encode() + b"z" * 60_000))
    exchange(base, get(b"/buildids/" + TWO_THOUSAND_IDS + b"," + marker.encode()))
    time.sleep(0.5)
    new = log.read_text().splitlines()[before:]
    assert "Traceback" not in "\n".join(new)
    assert all(len(line) < 1000 for line in new), [len(line) for line in new]
    assert len([line for line in new if "Bad Request" in line and marker in line]) == 1
    assert len([line for line in new if " 414: " in line]) == 1


READ_ROUTES = ["/buildids/{id}", "/rpm2buildids/{nvra}", "/package/{nvra}",
               "/api/v1/buildid/{id}", "/api/v1/prefix/{prefix}", "/api/v1/rpm/{nvra}",
               "/api/v1/package/apr", "/api/v1/path?path=/usr/bin/x", "/api/v1/stats"]


def test_a_database_out_of_reach_is_a_503_on_every_read_route(tmp_path: Path) -> None:
    nobody = socket.socket()
    nobody.bind(("127.0.0.1", 0))  # a port that is bound but never listened on
    port = nobody.getsockname()[1]
    env = {"DARKSERVER_DATABASE_URL": f"mysql://web:pw@127.0.0.1:{port}/darkserver"}
    try:
        with gunicorn(env, log=tmp_path / "server.log") as base:
            for route in READ_ROUTES:
                path = route.format(id=MISSING, nvra="apr-1.0-1.fc40.x86_64", prefix=MISSING)
                status, doc = get_json(base + path)
                assert (status, doc["status"]) == (503, 503), path
                assert doc["error"] == "database unavailable; try again shortly"
            status, doc = get_json(base + "/api/v1/buildids", {"buildids": [MISSING]})
            assert (status, doc["status"]) == (503, 503)
            assert get_json(base + "/api/v1/health/ready")[0] == 503
            assert get_json(base + "/api/v1/health")[0] == 200
        assert "Traceback" not in (tmp_path / "server.log").read_text()
    finally:
        nobody.close()


def _requests_counted(base: str, route: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(
        rf'darkserver_http_requests_total\{{method="GET",route="{route}",status="200"\}} (\S+)',
        text))


def _retried(call: Callable[[], T]) -> T:
    """A worker that reached its request limit closes the connections it has not read from
    yet (uvicorn): the client sees a disconnect and asks again, as an HTTP client does."""
    for _ in range(5):
        try:
            return call()
        except (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError):
            time.sleep(0.2)
    return call()


def test_metrics_add_up_every_worker_including_recycled_ones(sample_set: Any,
                                                             tmp_path: Path) -> None:
    env = {"DARKSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
           "DARKSERVER_METRICS_DIR": str(tmp_path / "metrics")}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_1.db").write_bytes(b"stale")  # an earlier run's: removed
    run_cmd([str(BIN / "darkserver"), "migrate", "--noinput"], env=env)
    run_cmd([str(BIN / "darkserver-import"), str(sample_set.directory)], env=env)
    build_id = sample_set.expected[0].build_id
    def pids() -> set[int]:
        return {int(m.group(1)) for f in (tmp_path / "metrics").glob("*.db")
                if (m := re.search(r"_(\d+)\.db$", f.name))}

    # Each worker is replaced after 7 requests. A worker notices that on its loop's next pass,
    # so on a fast machine it may answer many more first: lookups go on (in rounds of 20) until
    # a third worker has counted some, at least 60 and at most 2,000.
    with gunicorn(env, workers=2, args=("--max-requests", "7", "--max-requests-jitter", "0"),
                  log=tmp_path / "server.log") as base:
        answered = 0
        while answered < 60 or (len(pids()) <= 2 and answered < 2000):
            if _retried(lambda: get_json(f"{base}/api/v1/buildid/{build_id}"))[0] == 200:
                answered += 1
            if answered % 20 == 0:
                for _ in range(3):  # whichever worker answers the scrape: the sum of all
                    assert _retried(lambda: _requests_counted(base, "api-buildid")) == answered
        assert len(pids()) > 2  # workers were recycled, and their counts were kept


SCHEMATHESIS_CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"


def test_schemathesis_finds_the_server_as_strict_as_its_document(edge) -> None:
    """Every operation of /api/v1/openapi.json, positive and negative cases, every check
    (no 5xx, statuses and bodies as documented, what the document forbids rejected, what it
    allows accepted); a bounded number of examples and a fixed seed keep it short."""
    base, _log = edge
    result = run_cmd([str(BIN / "st"), "--config-file", str(SCHEMATHESIS_CONFIG), "run",
                      f"{base}/api/v1/openapi.json", "--checks", "all", "--mode", "all",
                      "--max-examples", "25", "--seed", "20261203", "--warnings", "off",
                      "--output-truncate", "true"], check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert re.search(r"Selected: (\d+)/\1", result.stdout), result.stdout[-2000:]
    assert re.search(r"\d+ generated, \d+ passed", result.stdout), result.stdout[-2000:]
