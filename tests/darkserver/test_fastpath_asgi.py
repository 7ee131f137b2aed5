"""The ASGI fast path (lookup/fastpath_asgi.py, the default server setup) answers exactly what
Django's ASGI handler answers, over its own connection (lookup/loopdb.py), routing from the
table Django's URLconf holds too (lookup/hotroutes.py).

Every request goes through the ASGI interface both to Django's handler alone and to the fast
path wrapped around it; status, headers and body must be equal, and a spy on the wrapped handler
tells which layer answered. The rows are committed (the fast path's connection is its own, so it
cannot see a test's open transaction).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.asgi import get_asgi_application
from django.db import DatabaseError, connections
from django.urls import get_resolver, resolve
from prometheus_client.parser import text_string_to_metric_families

from darkimport.run import store
from darkimport.run.records import ElfRecord, PackageMeta, PackageScan, Provenance
from darkserver.lookup import hotroutes, loopdb, metrics, pkgcache, queries
from darkserver.lookup.fastpath_asgi import AsgiFastPath
from darkserver.lookup.loopdb import LoopConnection
from tests.darkserver.conftest import (
    APR_ID,
    APR_PATH,
    make_apr,
    make_build,
    make_elf,
    make_package,
)

pytestmark = pytest.mark.django_db(transaction=True)

MISSING = "ab" * 20


def batch_body(ids: list[Any]) -> bytes:
    return json.dumps({"buildids": ids}).encode()


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
    ("POST", "/api/v1/buildid/zz", b"{}", {}),  # wrong method and a malformed id: 405
    ("DELETE", f"/buildids/{APR_ID}", None, {}),
    ("OPTIONS", f"/api/v1/buildid/{APR_ID}", None, {}),
    ("GET", "/api/v1/buildids", None, {}),
    ("PUT", "/api/v1/buildids", batch_body([APR_ID]), {}),
    ("POST", "/api/v1/buildids", b"not json", {}),
    ("POST", "/api/v1/buildids", b"\xff\xfe", {}),
    ("POST", "/api/v1/buildids", b"[1, 2]", {}),
    ("POST", "/api/v1/buildids", b'{"buildids": "abcdabcd"}', {}),
    ("POST", "/api/v1/buildids", b'{"buildids": [1]}', {}),
    ("POST", "/api/v1/buildids", b'{"buildids": ' + b"[" * 1000 + b"]" * 1000 + b"}", {}),
    ("POST", "/api/v1/buildids", batch_body([APR_ID, "zz"]), {}),  # bad id, with its index
    ("POST", "/api/v1/buildids", _many(3), {}),  # too many (the limit is 2 here)
    ("POST", "/api/v1/buildids", b"", {}),
    ("POST", "/api/v1/buildids", None, {"HTTP_TRANSFER_ENCODING": "chunked"}),
    ("POST", "/api/v1/buildids", b"x" * 5000, {}),  # over the body limit (4,096 here)
    ("GET", "/api/v1/health", None, {}),
]


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Spy:
    """Django's ASGI handler, counting the requests it answers."""

    def __init__(self) -> None:
        self.django = get_asgi_application()
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.django(scope, receive, send)


def scope_of(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode("utf-8"), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _call(app: Any, method: str, path: str, parts: list[bytes],
                headers: list[tuple[bytes, bytes]]) -> Answer:
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
                for i, p in enumerate(parts)] or [{"type": "http.request", "body": b""}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # nothing more from this client
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope_of(method, path, headers), receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return Answer(start["status"], list(start["headers"]), body)


def call(app: Any, method: str, path: str, body: bytes | None = None, chunked: bool = False,
         parts: int = 1) -> Answer:
    """One request; ``parts`` splits the body over that many messages; ``chunked`` sends no
    Content-Length (as a chunked request reaches an ASGI app)."""
    headers = []
    data = body or b""
    if body is not None:
        headers.append((b"content-type", b"application/json"))
        if not chunked:
            headers.append((b"content-length", str(len(data)).encode()))
    step = max(1, -(-len(data) // parts))
    pieces = [data[i:i + step] for i in range(0, len(data), step)]
    return asyncio.run(_call(app, method, path, pieces, headers))


@pytest.fixture
def cache_bytes() -> int:
    """The answer cache's size (lookup/answercache.py): none, so that each request here reads
    the database; the cache's own tests (test_answercache.py) give it room."""
    return 0


@pytest.fixture
def apps(cache_bytes: int) -> Iterator[tuple[Any, AsgiFastPath, Spy]]:
    spy = Spy()
    fast = AsgiFastPath(spy, answer_cache_bytes=cache_bytes)
    yield get_asgi_application(), fast, spy
    fast.db.discard()
    fast.batches.submit(fast.batch_db.discard).result()
    fast.batches.shutdown()
    fast.batch_split.close()


@pytest.fixture
def apr_committed() -> None:
    make_apr()


def both(apps: tuple[Any, AsgiFastPath, Spy], method: str, path: str, body: bytes | None = None,
         **how: Any) -> tuple[Answer, bool]:
    """Django's answer, asserting the fast path gives the same; and whether the fast path
    answered itself."""
    django, fast, spy = apps
    before = spy.calls
    got = call(fast, method, path, body, **how)
    want = call(django, method, path, body, **how)
    served = spy.calls == before
    assert (got.status, got.headers) == (want.status, want.headers)
    if method == "HEAD" and served:
        # The GET's headers and no body; Django sends one and leaves the server to drop it.
        assert got.body == b"" and int(dict(got.headers)[b"Content-Length"]) == len(want.body)
    else:
        assert got.body == want.body
    return got, served


@pytest.mark.parametrize(("method", "path"), SERVED, ids=[f"{m} {p}" for m, p in SERVED])
def test_lookups_are_served_and_identical(apps, apr_committed, method, path):
    answer, served = both(apps, method, path)
    assert served
    assert answer.status in (200, 404)
    if method == "HEAD":
        assert answer.body == b""


def test_hit_document_comes_from_the_database(apps, apr_committed):
    answer, served = both(apps, "GET", f"/api/v1/buildid/{APR_ID}")
    assert served and answer.status == 200
    assert json.loads(answer.body)["matches"][0]["path"] == APR_PATH


@pytest.mark.parametrize("parts", [1, 3, 64])
def test_batch_is_served_and_identical_however_the_body_arrives(apps, apr_committed, parts):
    answer, served = both(apps, "POST", "/api/v1/buildids",
                          batch_body([APR_ID, MISSING, APR_ID.upper()]), parts=parts)
    assert served
    doc = json.loads(answer.body)
    assert (list(doc["results"]), doc["missing"]) == ([APR_ID], [MISSING])


@pytest.mark.parametrize(("method", "path", "body", "extra"), PASSED_ON,
                         ids=[f"{m} {p[:40]} {str(b)[:20]}" for m, p, b, _ in PASSED_ON])
def test_everything_else_goes_to_django_with_its_body(apps, apr_committed, settings, method,
                                                      path, body, extra):
    """Django gets the body the fast path read: its error names what the body held."""
    settings.DARKSERVER_MAX_BATCH = 2
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    chunked = "HTTP_TRANSFER_ENCODING" in extra
    answer, served = both(apps, method, path, b"[1]" if chunked else body, chunked=chunked,
                          parts=2)
    assert not served
    assert str(answer.status)[:1] in "24"
    assert dict(answer.headers)[b"Content-Type"] == b"application/json"


def test_a_bad_batch_body_reaches_django_whole(apps, apr_committed, settings):
    settings.DARKSERVER_MAX_BATCH = 2
    answer, served = both(apps, "POST", "/api/v1/buildids",
                          batch_body([f"{i:040x}" for i in range(3)]), parts=5)
    assert not served
    assert answer.status == 413 and json.loads(answer.body)["count"] == 3


def test_a_broken_connection_is_replaced_and_the_lookup_answered(apps, apr_committed):
    _django, fast, spy = apps
    assert call(fast, "GET", f"/api/v1/buildid/{APR_ID}").status == 200
    assert spy.calls == 0 and fast.db.is_open
    broken = fast.db._db
    broken.connection.close()  # the server side going away looks the same to the driver
    answer = call(fast, "GET", f"/api/v1/buildid/{APR_ID}")
    assert (answer.status, spy.calls) == (200, 0)  # tried again on a new connection
    assert json.loads(answer.body)["matches"][0]["path"] == APR_PATH
    assert fast.db.is_open and fast.db._db is not broken


def test_a_broken_batch_connection_is_replaced_too(apps, apr_committed):
    _django, fast, spy = apps
    body = batch_body([APR_ID, MISSING])
    assert call(fast, "POST", "/api/v1/buildids", body).status == 200
    broken = fast.batch_db._db
    fast.batches.submit(broken.connection.close).result()
    answer = call(fast, "POST", "/api/v1/buildids", body)
    assert (answer.status, spy.calls) == (200, 0)
    assert json.loads(answer.body)["missing"] == [MISSING]
    assert fast.batch_db.is_open and fast.batch_db._db is not broken


def test_single_lookups_are_answered_while_a_batch_runs(apps, apr_committed, settings):
    """A batch runs on the worker's batch thread: the event loop goes on answering single
    lookups meanwhile (on the loop itself, the batch would hold them all up)."""
    _django, fast, spy = apps
    settings.DARKSERVER_MAX_BATCH = 20_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000_000
    ids = [APR_ID] + [f"{n:040x}" for n in range(19_999)]
    body = batch_body(ids)
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]

    async def scenario() -> tuple[Answer, Answer, bool]:
        batch = asyncio.create_task(_call(fast, "POST", "/api/v1/buildids", [body], headers))
        await asyncio.sleep(0)  # the batch starts and goes to its thread
        single = await _call(fast, "GET", f"/api/v1/buildid/{APR_ID}", [], [])
        batch_was_running = not batch.done()
        return await batch, single, batch_was_running

    batch, single, batch_was_running = asyncio.run(scenario())
    assert batch_was_running  # the single lookup was answered first
    assert single.status == 200
    assert batch.status == 200 and len(json.loads(batch.body)["missing"]) == 19_999
    assert spy.calls == 0


def test_when_no_new_connection_opens_django_answers(apps, apr_committed, caplog):
    _django, fast, spy = apps
    assert call(fast, "GET", f"/api/v1/buildid/{APR_ID}").status == 200
    fast.db._db.connection.close()
    fast.db.overrides = bad_settings()
    answer = call(fast, "GET", f"/api/v1/buildid/{APR_ID}")
    assert (answer.status, spy.calls) == (200, 1)
    assert "cannot open the database" in caplog.text and "fast path failed" in caplog.text
    assert json.loads(answer.body)["matches"][0]["path"] == APR_PATH


def bad_settings() -> dict[str, str]:
    if connections["default"].vendor == "sqlite":
        return {"NAME": "/nonexistent/dir/db.sqlite3"}
    return {"PORT": "1"}  # nothing listens there


def test_an_unreachable_database_is_retried_at_most_once_a_second(apps, apr_committed,
                                                                  monkeypatch, caplog):
    _django, fast, spy = apps
    fast.db = LoopConnection(bad_settings())
    answer = call(fast, "GET", f"/api/v1/buildid/{APR_ID}")
    assert "cannot open the database" in caplog.text
    assert (answer.status, spy.calls) == (200, 1)  # Django answered over its own connection
    assert json.loads(answer.body)["matches"][0]["path"] == APR_PATH
    caplog.clear()
    call(fast, "GET", f"/api/v1/buildid/{APR_ID}")
    assert "cannot open the database" not in caplog.text  # not tried again within a second
    assert spy.calls == 2
    fast.db.overrides = {}  # the database is back
    monkeypatch.setattr(loopdb, "RETRY_SECONDS", 0.0)
    assert call(fast, "GET", f"/api/v1/buildid/{APR_ID}").status == 200
    assert fast.db.is_open and spy.calls == 2


def test_lifespan_opens_and_closes_the_connection():
    fast = AsgiFastPath(get_asgi_application())
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []
    states: list[bool] = []

    async def receive() -> dict[str, Any]:
        states.append(fast.db.is_open)
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(fast({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert states == [False, True]  # open after startup
    assert not fast.db.is_open and not fast.batch_db.is_open  # closed at shutdown


def test_the_switch_leaves_django_alone(settings, apr_committed):
    spy = Spy()
    off = AsgiFastPath(spy, fast=False)
    assert call(off, "GET", f"/api/v1/buildid/{APR_ID}").status == 200
    assert spy.calls == 1 and not off.db.is_open


def test_single_hit_and_miss_documents(apps, apr_committed):
    hit, _ = both(apps, "GET", f"/api/v1/buildid/{APR_ID}")
    assert [m["path"] for m in json.loads(hit.body)["matches"]][0] == APR_PATH
    miss, served = both(apps, "GET", f"/api/v1/buildid/{MISSING.upper()}")
    assert served and miss.status == 404
    assert (b"Cache-Control", b"no-store") in miss.headers
    assert json.loads(miss.body)["buildid"] == MISSING


@pytest.mark.parametrize("ids", [
    [APR_ID, MISSING],
    [APR_ID.upper(), APR_ID, MISSING, MISSING],
    [],
], ids=["hit-and-miss", "duplicates", "empty"])
def test_batch_is_served_and_identical(apps, apr_committed, ids):
    answer, served = both(apps, "POST", "/api/v1/buildids", batch_body(ids))
    assert served
    assert answer.status == 200


def test_documents_that_orjson_refuses_are_identical_too(apps):
    """A package note holding an integer beyond 64 bits (the standard library encodes that
    document), and non-ASCII text."""
    package = make_package()
    path = "/usr/lib64/caf\u00e9.so"
    note = '{"name": "caf\u00e9", "id": 123456789012345678901234}'
    make_elf(package, APR_ID, path, package_note=note)
    answer, served = both(apps, "GET", f"/api/v1/buildid/{APR_ID}")
    assert served
    match = json.loads(answer.body)["matches"][0]
    assert (match["path"], match["package_note"]["id"]) == (path, 123456789012345678901234)
    assert b"\\u00e9" in answer.body  # ASCII-escaped: encoded by json, not orjson
    _, served = both(apps, "POST", "/api/v1/buildids", batch_body([APR_ID]))
    assert served


def test_a_failing_lookup_goes_to_django(apps, apr_committed, monkeypatch, caplog):
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
    assert (answer.status, spy.calls) == (200, 1)  # Django tried again and answered
    assert "fast path failed" in caplog.text


def _count(family: str, **labels: str) -> float:
    text = metrics.exposition().decode()
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            if sample.name == family and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_are_counted_with_the_route_names(apps, apr_committed):
    _django, fast, spy = apps
    counts = {
        ("api-buildid", "GET", "200"): f"/api/v1/buildid/{APR_ID}",
        ("api-buildid", "HEAD", "404"): f"/api/v1/buildid/{MISSING}",
        ("compat-buildids", "GET", "200"): f"/buildids/{APR_ID},{MISSING}",
    }
    before = {k: _count("darkserver_http_requests_total", route=k[0], method=k[1], status=k[2])
              for k in counts}
    missing = _count("darkserver_lookup_buildids_missing_total", endpoint="compat")
    batches = _count("darkserver_batch_size_count")
    queried = _count("darkserver_fastpath_query_ids_count")
    ids = _count("darkserver_fastpath_query_ids_sum")
    for (_route, method, _status), path in counts.items():
        call(fast, method, path)
    call(fast, "POST", "/api/v1/buildids", batch_body([APR_ID, MISSING]))
    assert spy.calls == 0
    for key in counts:
        after = _count("darkserver_http_requests_total", route=key[0], method=key[1],
                       status=key[2])
        assert after == before[key] + 1, key
    assert _count("darkserver_lookup_buildids_missing_total", endpoint="compat") == missing + 1
    assert _count("darkserver_batch_size_count") == batches + 1
    # One query per single lookup here (one at a time), of 1, 1 and 2 distinct ids.
    assert _count("darkserver_fastpath_query_ids_count") == queried + 3
    assert _count("darkserver_fastpath_query_ids_sum") == ids + 4
    assert _count("darkserver_http_request_duration_seconds_count", route="api-buildids") >= 1


def test_routes_are_recognised_without_the_database():
    def route(method: str, path: str) -> str | None:
        found = hotroutes.route(method, path, None)
        return found[0] if found else None

    assert route("GET", f"/api/v1/buildid/{APR_ID}") == "api-buildid"
    assert route("HEAD", f"/buildids/{APR_ID},{MISSING}") == "compat-buildids"
    assert route("GET", f"/api/v1/buildids/{APR_ID}") is None
    assert route("GET", f"/buildidsx/{APR_ID}") is None
    assert route("PATCH", f"/buildids/{APR_ID}") is None
    assert route("GET", "/api/v1/buildid/zz") is None  # Django answers the 400
    assert route("POST", "/api/v1/buildids") is None  # no body read: Django answers


def test_django_routes_the_hot_urls_from_the_same_table():
    """The URLconf holds the table's own pattern objects, first, and resolves each hot URL to
    the route the fast path picks."""
    patterns = get_resolver("darkserver.lookup.urls").url_patterns
    assert patterns[:len(hotroutes.ROUTES)] == [hot.pattern for hot in hotroutes.ROUTES]
    for method, path in [*SERVED, ("POST", "/api/v1/buildids")]:
        found = hotroutes.match(method, path)
        assert found is not None
        assert resolve(path).url_name == found[0].name


def test_single_lookups_that_arrive_together_share_one_query(apps, apr_committed):
    """Requests started in the same pass of the loop are read with one query; each still gets
    exactly the bytes Django gives it alone, hit or miss, and a lone one waits for nothing."""
    django, fast, spy = apps
    paths = [f"/api/v1/buildid/{APR_ID}", f"/api/v1/buildid/{MISSING}",
             f"/buildids/{APR_ID},{MISSING}", f"/buildids/{APR_ID.upper()}",
             f"/api/v1/buildid/{'cd' * 20}"] * 3
    fetched: list[int] = []
    real_read = fast.coalescer.read

    def counting_read(ids: list[bytes]) -> Any:
        fetched.append(len(ids))
        return real_read(ids)

    async def together() -> list[Answer]:
        assert await fast.db.ensure()
        fast.coalescer.read = counting_read
        return await asyncio.gather(*(_call(fast, "GET", p, [], []) for p in paths))

    answers = asyncio.run(together())
    assert spy.calls == 0
    assert fast.coalescer.flushes == 1 and fetched == [3]  # 15 requests, 3 distinct ids
    for path, got in zip(paths, answers, strict=True):
        want = call(django, "GET", path)
        assert (got.status, got.headers, got.body) == (want.status, want.headers, want.body)
    alone = call(fast, "GET", f"/api/v1/buildid/{APR_ID}")
    assert alone.status == 200 and fast.coalescer.flushes == 2


def test_a_failed_shared_query_fails_no_lookup(apps, apr_committed):
    """The shared query breaks (the connection dropped): every request of it is answered, on a
    new connection, with what Django answers."""
    django, fast, spy = apps
    paths = [f"/api/v1/buildid/{APR_ID}", f"/api/v1/buildid/{MISSING}", f"/buildids/{APR_ID}"]

    async def together() -> list[Answer]:
        assert await fast.db.ensure()
        fast.db._db.connection.close()
        return await asyncio.gather(*(_call(fast, "GET", p, [], []) for p in paths))

    answers = asyncio.run(together())
    for path, got in zip(paths, answers, strict=True):
        want = call(django, "GET", path)
        assert (got.status, got.body) == (want.status, want.body)
    assert fast.db.is_open and spy.calls == 0


# --- the package cache (lookup/pkgcache.py) ----------------------------------------------------


def _scan(sha256: str = "ab" * 32, build_id: bytes = b"\x42" * 20,
          path: str = "/usr/bin/cached") -> PackageScan:
    meta = PackageMeta(
        kind="rpm", name="cached", epoch=None, version="1.0", release="1.fc40", arch="x86_64",
        source_name="cached", filename="cached-1.0-1.fc40.x86_64.rpm",
        nvra="cached-1.0-1.fc40.x86_64", distro="fc40", size=1234, sha256=sha256,
        url="https://pkgs.example/cached.rpm",
    )
    return PackageScan(meta=meta, elves=[ElfRecord(build_id, path, 3, 62, 64, False, False)],
                       elf_files=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cached_app(apps: tuple[Any, AsgiFastPath, Spy]) -> Clock:
    clock = Clock()
    _django, fast, _spy = apps
    fast.db.cache.clock = fast.batch_db.cache.clock = fast.batch_split.helper.cache.clock = clock
    fast.answers.clock = clock
    return clock


CACHED = f"/api/v1/buildid/{'42' * 20}"


def _package(answer: Answer) -> dict[str, Any]:
    package: dict[str, Any] = json.loads(answer.body)["matches"][0]["package"]
    return package


# With the answer cache too (test_answercache.py): its entries follow the same generation.
WITH_AND_WITHOUT_ANSWER_CACHE = pytest.mark.parametrize("cache_bytes", [0, 1 << 20])


@WITH_AND_WITHOUT_ANSWER_CACHE
def test_cached_package_fields_follow_a_filled_checksum_within_the_bound(apps):
    """The importer fills in a checksum (the same package read again from its file): lookups
    show it once the cache checked the generation again, CHECK_SECONDS later at most."""
    _django, fast, spy = apps
    clock = _cached_app(apps)
    assert store.store_scan(_scan(sha256="")).inserted
    first, served = both(apps, "GET", CACHED)
    assert served and _package(first)["sha256"] == ""
    reads = fast.db.cache.reads
    assert not store.store_scan(_scan()).inserted  # fills the checksum in, in place
    clock.now += pkgcache.CHECK_SECONDS / 2
    stale = call(fast, "GET", CACHED)
    assert stale.body == first.body and fast.db.cache.reads == reads  # from the cache
    clock.now += pkgcache.CHECK_SECONDS / 2
    fresh, served = both(apps, "GET", CACHED)  # equal to Django's, which reads the join
    assert served and _package(fresh)["sha256"] == "ab" * 32
    assert spy.calls == 0  # the fast path answered every request itself


@WITH_AND_WITHOUT_ANSWER_CACHE
def test_a_replaced_package_and_a_build_given_its_koji_id_are_answered(apps):
    """The importer replaces the package (other content, same name) and then learns the build's
    Koji id: every answer after the bound is the join's, single and batch alike."""
    _django, fast, _spy = apps
    clock = _cached_app(apps)
    store.store_scan(_scan())
    batch = batch_body(["42" * 20, MISSING])
    both(apps, "GET", CACHED)
    both(apps, "POST", "/api/v1/buildids", batch)
    replaced = store.store_scan(_scan(sha256="cd" * 32, path="/usr/bin/replaced"))
    assert replaced.replaced
    clock.now += pkgcache.CHECK_SECONDS
    answer, served = both(apps, "GET", CACHED)
    assert served and _package(answer)["sha256"] == "cd" * 32
    other = _scan(build_id=b"\x43" * 20, path="/usr/bin/other")
    other.meta.name, other.meta.nvra = "cached-extra", "cached-extra-1.0-1.fc40.x86_64"
    store.store_scan(other, Provenance(koji_build_id=777))  # the same build, now with its id
    clock.now += pkgcache.CHECK_SECONDS
    answer, served = both(apps, "GET", CACHED)
    assert served and json.loads(answer.body)["matches"][0]["build"]["koji_build_id"] == 777
    answer, served = both(apps, "POST", "/api/v1/buildids", batch)
    assert served and json.loads(answer.body)["results"]["42" * 20][0]["build"][
        "koji_build_id"] == 777


def test_a_package_gone_between_the_two_reads_is_read_again(apps, monkeypatch):
    """The ELF rows name a package the cache cannot find (replaced in between): the connection
    reads both again instead of answering without it."""
    _django, fast, _spy = apps
    store.store_scan(_scan())
    both(apps, "GET", CACHED)
    real_add = pkgcache.PackageCache.add
    calls: list[int] = []

    def first_finds_nothing(cache: pkgcache.PackageCache, found: Any, keep: Any) -> None:
        calls.append(len(found))
        real_add(cache, [] if len(calls) == 1 else found, keep)

    monkeypatch.setattr(pkgcache.PackageCache, "add", first_finds_nothing)
    fast.db.cache.parts.clear()
    answer, served = both(apps, "GET", CACHED)
    assert served and answer.status == 200 and calls == [1, 1]


def test_recount_keeps_and_raises_the_generation():
    from darkserver.lookup import counters
    from darkserver.lookup.models import Counter

    Counter.objects.create(name=counters.GENERATION, value=41)
    counters.recount()
    assert Counter.objects.get(name=counters.GENERATION).value == 42
    assert counters.GENERATION not in counters.stats()


# --- large batches read in two halves (lookup/batchsplit.py) -----------------------------------


@pytest.fixture
def many_packages() -> list[str]:
    """300 build-ids over 30 packages of 3 builds, two rows for some ids: a batch that is split,
    with rows of one id in several packages."""
    ids = []
    for b in range(3):
        build = make_build(name=f"split{b}")
        first = None
        for p in range(10):
            package = make_package(build, name=f"split{b}-{p}")
            first = first or package
            for e in range(10):
                build_id = f"{b:02x}{p:02x}{e:02x}" + "5a" * 17
                make_elf(package, build_id, f"/usr/lib64/libsplit{e}.so")
                if e % 4 == 0 and package != first:  # the same id in another package too
                    make_elf(first, build_id, f"/usr/lib64/again{p}-{e}.so")
                ids.append(build_id)
    return ids


def test_a_large_batch_is_split_and_answered_as_unsplit(apps, many_packages, settings):
    _django, fast, spy = apps
    settings.DARKSERVER_MAX_BATCH = 1000
    ids = [*many_packages, *(f"{n:040x}" for n in range(200))]  # 500: 300 found, 200 missing
    answer, served = both(apps, "POST", "/api/v1/buildids", batch_body(ids))
    assert served and fast.batch_split.splits == 1 and fast.batch_split.helper.is_open
    doc = json.loads(answer.body)
    assert len(doc["results"]) == 300 and len(doc["missing"]) == 200
    small, served = both(apps, "POST", "/api/v1/buildids", batch_body(ids[:100]))
    assert served and fast.batch_split.splits == 1  # below SPLIT_MIN: not split


def test_a_failing_helper_fails_no_id_of_the_batch(apps, many_packages, settings, monkeypatch):
    """The helper's connection breaks, then cannot be opened: the batch thread reads the
    helper's half itself, and every id is answered as unsplit."""
    _django, fast, spy = apps
    settings.DARKSERVER_MAX_BATCH = 1000
    monkeypatch.setattr(loopdb, "RETRY_SECONDS", 0.0)
    body = batch_body([*many_packages, MISSING])
    both(apps, "POST", "/api/v1/buildids", body)
    helper = fast.batch_split.helper
    fast.batch_split.executor.submit(helper._db.connection.close).result()
    helper.overrides = bad_settings()  # and no new connection opens
    answer, served = both(apps, "POST", "/api/v1/buildids", body)
    assert served and spy.calls == 0 and not helper.is_open
    assert fast.batch_split.splits == 2 and json.loads(answer.body)["missing"] == [MISSING]
    helper.overrides = {}  # back: the helper reads its half again
    answer, served = both(apps, "POST", "/api/v1/buildids", body)
    assert served and helper.is_open and fast.batch_split.splits == 3


def test_lookups_arriving_during_a_query_share_the_next_one(apps, apr_committed):
    """While a query is under way (on MariaDB the loop goes on serving meanwhile), new lookups
    wait for it and are then read together by one query; a request whose client went away
    meanwhile cancels nothing but itself."""
    django, fast, spy = apps
    later = [f"/api/v1/buildid/{APR_ID}", f"/buildids/{MISSING},{APR_ID}",
             f"/api/v1/buildid/{'cd' * 20}"]
    fetched: list[int] = []
    real_read = fast.coalescer.read

    async def slow_read(ids: list[bytes]) -> Any:
        """A query that takes a while, as one on MariaDB (SQLite's return at once)."""
        fetched.append(len(ids))
        for _ in range(5):  # the query under way: the loop runs other requests meanwhile
            await asyncio.sleep(0)
        found = real_read(ids)
        return found if isinstance(found, tuple) else await found

    async def scenario() -> tuple[Answer, list[Answer]]:
        assert await fast.db.ensure()
        fast.coalescer.read = slow_read
        first = asyncio.create_task(_call(fast, "GET", f"/api/v1/buildid/{MISSING}", [], []))
        while not fetched:  # until its query has started
            await asyncio.sleep(0)
        gone = asyncio.create_task(_call(fast, "GET", f"/buildids/{'ef' * 20}", [], []))
        rest = [asyncio.create_task(_call(fast, "GET", p, [], [])) for p in later]
        await asyncio.sleep(0)
        gone.cancel()
        return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(scenario())
    assert fast.db.nonblocking == (connections["default"].vendor == "mysql")
    assert first.status == 404 and spy.calls == 0
    assert fast.coalescer.flushes == 2 and fetched == [1, 4]  # 'ef' is read, then dropped
    for path, got in zip(later, rest, strict=True):
        want = call(django, "GET", path)
        assert (got.status, got.headers, got.body) == (want.status, want.headers, want.body)
