"""The fast path in front of Django (lookup/fastpath.py) answers exactly what Django answers.

Every request is sent as a WSGI call both to Django's handler alone and to the fast path wrapped
around it; status line, headers (in order) and body must be equal, and a spy on the wrapped
handler tells which of the two layers answered.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, close_old_connections
from prometheus_client.parser import text_string_to_metric_families

from darkserver.lookup import fastpath, metrics, queries
from darkserver.lookup.fastpath import FastPath
from tests.darkserver.conftest import APR_ID, APR_PATH

MISSING = "ab" * 20


@dataclass
class Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


class Spy:
    """Django's handler, counting the requests it answers."""

    def __init__(self) -> None:
        self.django = WSGIHandler()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.django(environ, start_response)


def call(app: Any, method: str, path: str, body: bytes | None = None,
         **extra: str) -> Answer:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body or b""), "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    if body is not None:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    environ.update(extra)
    started: list[Any] = []
    result = app(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()  # what a WSGI server does; Django sends request_finished here
    status, headers = started[0]
    return Answer(status, list(headers), data)


@pytest.fixture
def no_connection_upkeep() -> Iterator[None]:
    """As Django's test client does: the test's transaction must survive request_started and
    request_finished, whose close_old_connections would close a connection inside atomic()."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def apps(no_connection_upkeep: None) -> tuple[WSGIHandler, FastPath, Spy]:
    spy = Spy()
    return WSGIHandler(), FastPath(spy), spy


def both(apps: tuple[WSGIHandler, FastPath, Spy], method: str, path: str,
         body: bytes | None = None, **extra: str) -> tuple[Answer, bool]:
    """Django's answer, asserting the fast path gives the same; and whether the fast path
    answered itself (True) or handed the request to Django."""
    django, fast, spy = apps
    before = spy.calls
    got = call(fast, method, path, body, **extra)
    want = call(django, method, path, body, **extra)
    assert got.status == want.status
    assert got.headers == want.headers
    if method == "HEAD" and spy.calls == before:
        assert got.body == b""  # the GET's headers; the server would drop Django's body
        assert int(dict(got.headers)["Content-Length"]) == len(call(django, "GET", path).body)
    else:
        assert got.body == want.body
    return want, spy.calls == before


def batch_body(ids: list[Any]) -> bytes:
    return json.dumps({"buildids": ids}).encode()


# --- served by the fast path: byte-identical to Django ------------------------------------------

SERVED = [
    ("GET", f"/api/v1/buildid/{APR_ID}"),
    ("GET", f"/api/v1/buildid/{APR_ID.upper()}"),
    ("HEAD", f"/api/v1/buildid/{APR_ID}"),
    ("GET", f"/api/v1/buildid/{MISSING}"),
    ("HEAD", f"/api/v1/buildid/{MISSING}"),
    ("GET", f"/buildids/{APR_ID}"),
    ("GET", f"/buildids/{APR_ID.upper()},{MISSING},{APR_ID}"),
    ("GET", f"/buildids/{MISSING}"),
    ("HEAD", f"/buildids/{APR_ID}"),
]


@pytest.mark.parametrize(("method", "path"), SERVED, ids=[f"{m} {p}" for m, p in SERVED])
def test_lookups_are_served_and_identical(apps, apr, method, path):
    answer, served = both(apps, method, path)
    assert served
    assert answer.status in ("200 OK", "404 Not Found")


def test_single_hit_and_miss_documents(apps, apr):
    hit, _ = both(apps, "GET", f"/api/v1/buildid/{APR_ID}")
    assert [m["path"] for m in json.loads(hit.body)["matches"]][0] == APR_PATH
    miss, _ = both(apps, "GET", f"/api/v1/buildid/{MISSING.upper()}")
    assert miss.status == "404 Not Found"
    assert ("Cache-Control", "no-store") in miss.headers
    assert json.loads(miss.body)["buildid"] == MISSING


@pytest.mark.parametrize("ids", [
    [APR_ID, MISSING],
    [APR_ID.upper(), APR_ID, MISSING, MISSING],
    [],
], ids=["hit-and-miss", "duplicates", "empty"])
def test_batch_is_served_and_identical(apps, apr, ids):
    answer, served = both(apps, "POST", "/api/v1/buildids", batch_body(ids))
    assert served
    assert answer.status == "200 OK"


def test_documents_that_orjson_refuses_are_identical_too(apps, make):
    """A package note holding an integer beyond 64 bits (the standard library encodes that
    document), and non-ASCII text."""
    package = make.package()
    path = "/usr/lib64/café.so"
    make.elf(package, APR_ID, path, package_note='{"name": "café", "id": 123456789012345678901234}')
    answer, served = both(apps, "GET", f"/api/v1/buildid/{APR_ID}")
    assert served
    match = json.loads(answer.body)["matches"][0]
    assert (match["path"], match["package_note"]["id"]) == (path, 123456789012345678901234)
    assert b"\\u00e9" in answer.body  # ASCII-escaped: encoded by json, not orjson
    _, served = both(apps, "POST", "/api/v1/buildids", batch_body([APR_ID]))
    assert served


# --- handed to Django: every error class answered as before -------------------------------------

def _many(n: int) -> bytes:
    return batch_body([f"{i:040x}" for i in range(n)])


PASSED_ON: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    ("GET", "/api/v1/buildid/xyz", None, {}),  # malformed
    ("GET", "/api/v1/buildid/abc", None, {}),  # odd length, too short
    ("GET", f"/api/v1/buildid/{'ab' * 65}", None, {}),  # too long
    ("GET", f"/api/v1/buildid/{APR_ID}/", None, {}),  # unknown route
    ("GET", "/api/v1/buildid/", None, {}),
    ("GET", f"/buildids/{APR_ID},nothex", None, {}),
    ("GET", f"/buildids/{APR_ID},", None, {}),
    ("GET", "/buildids/", None, {}),
    ("GET", "/api/v1/buildid/caf\u00e9caf\u00e9", None, {}),
    ("POST", f"/api/v1/buildid/{APR_ID}", b"{}", {}),  # wrong method
    ("DELETE", f"/buildids/{APR_ID}", None, {}),
    ("OPTIONS", f"/api/v1/buildid/{APR_ID}", None, {}),
    ("GET", "/api/v1/buildids", None, {}),
    ("PUT", "/api/v1/buildids", batch_body([APR_ID]), {}),
    ("POST", "/api/v1/buildids", b"not json", {}),
    ("POST", "/api/v1/buildids", b"\xff\xfe", {}),
    ("POST", "/api/v1/buildids", b"[1, 2]", {}),
    ("POST", "/api/v1/buildids", b'{"buildids": "abcdabcd"}', {}),
    ("POST", "/api/v1/buildids", b'{"buildids": [1]}', {}),
    ("POST", "/api/v1/buildids", batch_body([APR_ID, "zz"]), {}),  # bad id, with its index
    ("POST", "/api/v1/buildids", _many(3), {}),  # too many (the limit is 2 here)
    ("POST", "/api/v1/buildids", b"", {}),
    ("POST", "/api/v1/buildids", None, {"HTTP_TRANSFER_ENCODING": "chunked"}),
    ("POST", "/api/v1/buildids", b"x" * 5000, {}),  # over the body limit (4,096 here)
    ("GET", "/api/v1/health", None, {}),
]


@pytest.mark.parametrize(("method", "path", "body", "extra"), PASSED_ON,
                         ids=[f"{m} {p[:40]} {str(b)[:20]}" for m, p, b, _ in PASSED_ON])
def test_everything_else_goes_to_django(apps, apr, settings, method, path, body, extra):
    settings.DARKSERVER_MAX_BATCH = 2
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    answer, served = both(apps, method, path, body, **extra)
    assert not served
    assert answer.status[:1] in "24"
    assert dict(answer.headers)["Content-Type"] == "application/json"


def test_a_failing_lookup_goes_to_django(apps, apr, monkeypatch, caplog):
    real = queries.by_build_id
    failures = []

    def flaky(build_id, fetch=None):
        if not failures:
            failures.append(build_id)
            raise DatabaseError("connection lost")
        return real(build_id, fetch)

    monkeypatch.setattr(queries, "by_build_id", flaky)
    _django, fast, spy = apps
    answer = call(fast, "GET", f"/api/v1/buildid/{APR_ID}")
    assert (answer.status, spy.calls) == ("200 OK", 1)  # Django tried again and answered
    assert "fast path failed" in caplog.text


def test_a_lookup_that_keeps_failing_is_a_json_500(apps, db, monkeypatch):
    def broken(build_id, fetch=None):
        raise DatabaseError("secret detail")

    monkeypatch.setattr(queries, "by_build_id", broken)
    answer, _served = both(apps, "GET", f"/api/v1/buildid/{APR_ID}")
    assert answer.status == "500 Internal Server Error"
    assert json.loads(answer.body) == {
        "error": "internal error; the server log has the details", "status": 500,
    }


# --- what the fast path keeps of Django ---------------------------------------------------------

def test_connection_upkeep_runs_around_each_lookup(apps, apr):
    """request_started and request_finished are sent, so close_old_connections runs as under
    Django (dropping connections that broke or outlived CONN_MAX_AGE)."""
    seen: list[str] = []

    def started(sender, **kwargs):
        seen.append("started")

    def finished(sender, **kwargs):
        seen.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        _django, fast, spy = apps
        call(fast, "GET", f"/api/v1/buildid/{APR_ID}")
        call(fast, "POST", "/api/v1/buildids", batch_body([APR_ID]))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert seen == ["started", "finished"] * 2
    assert spy.calls == 0


def _count(family: str, **labels: str) -> float:
    text = metrics.exposition().decode()
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            if sample.name == family and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_are_counted_with_the_route_names(apps, apr):
    _django, fast, _spy = apps
    counts = {
        ("api-buildid", "GET", "200"): f"/api/v1/buildid/{APR_ID}",
        ("api-buildid", "HEAD", "404"): f"/api/v1/buildid/{MISSING}",
        ("compat-buildids", "GET", "200"): f"/buildids/{APR_ID},{MISSING}",
    }
    before = {k: _count("darkserver_http_requests_total", route=k[0], method=k[1], status=k[2])
              for k in counts}
    missing = _count("darkserver_lookup_buildids_missing_total", endpoint="compat")
    batches = _count("darkserver_batch_size_count")
    for (_route, method, _status), path in counts.items():
        call(fast, method, path)
    call(fast, "POST", "/api/v1/buildids", batch_body([APR_ID, MISSING]))
    for key in counts:
        after = _count("darkserver_http_requests_total", route=key[0], method=key[1],
                       status=key[2])
        assert after == before[key] + 1, key
    assert _count("darkserver_lookup_buildids_missing_total", endpoint="compat") == missing + 1
    assert _count("darkserver_batch_size_count") == batches + 1
    assert _count("darkserver_http_request_duration_seconds_count", route="api-buildids") >= 1


def test_the_switch_leaves_django_alone(settings):
    import darkserver.wsgi

    try:
        settings.DARKSERVER_FASTPATH = False
        assert isinstance(importlib.reload(darkserver.wsgi).application, WSGIHandler)
        settings.DARKSERVER_FASTPATH = True
        assert isinstance(importlib.reload(darkserver.wsgi).application, FastPath)
    finally:
        importlib.reload(darkserver.wsgi)


def test_routes_are_recognised_without_the_database():
    def route(method: str, path: str) -> str | None:
        found = fastpath.route(method, path, None)
        return found[0] if found else None

    assert route("GET", f"/api/v1/buildid/{APR_ID}") == "api-buildid"
    assert route("HEAD", f"/buildids/{APR_ID},{MISSING}") == "compat-buildids"
    assert route("GET", f"/api/v1/buildids/{APR_ID}") is None
    assert route("GET", f"/buildidsx/{APR_ID}") is None
    assert route("PATCH", f"/buildids/{APR_ID}") is None
