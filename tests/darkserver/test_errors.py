"""Every error is JSON with the right status: bad ids, bad bodies, unknown routes, wrong methods,
oversized requests, and a crash. HEAD agrees with GET."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from darkserver.lookup import queries
from tests.darkserver.conftest import APR_ID

RULE = "build-id must be 8 to 128 hex digits, even length"
MALFORMED = {
    "not hex": "868357887701f51d867eacd0da6e5af6d8c70czz",
    "odd length": "868357887701f51d867eacd0da6e5af6d8c70ce",
    "too short": "868357",
    "too long": "ab" * 65,
    "separator": "8683-5788-7701",
}
SHAPE = 'send a JSON object with a list of build-ids: {"buildids": ["<hex>", ...]}'


@pytest.mark.parametrize("route", ["api-buildid", "compat-buildids"])
@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_build_id_is_a_400_echoing_it(client, db, route, bad):
    response = client.get(reverse(route, args=[bad]))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": f"malformed build-id {bad!r}: {RULE}",
        "status": 400,
        "buildid": bad,
    }


def test_malformed_build_id_in_a_batch_names_it_and_its_index(client, db):
    body = {"buildids": [APR_ID, "xyz"]}
    response = client.post(
        reverse("api-buildids"), json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": f"malformed build-id 'xyz': {RULE}",
        "status": 400,
        "buildid": "xyz",
        "index": 1,
    }


@pytest.mark.parametrize(
    "body",
    [b"", b"buildids=abc", b'{"buildids": [', b"\xff\xfe"],
    ids=["empty", "form", "cut", "binary"],
)
def test_batch_body_that_is_not_json_is_a_400(client, db, body):
    response = client.post(reverse("api-buildids"), body, content_type="application/json")
    assert response.status_code == 400
    doc = response.json()
    assert doc["status"] == 400 and set(doc) == {"error", "status"}
    assert doc["error"].startswith("request body is not JSON (")
    assert doc["error"].endswith(SHAPE)


@pytest.mark.parametrize(
    "doc",
    [[APR_ID], {"ids": [APR_ID]}, {"buildids": APR_ID}, {"buildids": [1234]}, None, "x"],
    ids=["bare list", "wrong key", "string", "number", "null", "json string"],
)
def test_batch_of_the_wrong_shape_is_a_400(client, db, doc):
    response = client.post(
        reverse("api-buildids"), json.dumps(doc), content_type="application/json"
    )
    assert (response.status_code, response.json()) == (400, {"error": SHAPE, "status": 400})


def test_chunked_batch_without_length_is_a_411(client, db):
    response = client.post(
        reverse("api-buildids"), b"", content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
    )
    assert response.status_code == 411
    assert response.json() == {
        "error": "send the batch with a Content-Length header, not chunked", "status": 411,
    }


def test_batch_with_too_many_ids_is_a_413(client, db, settings):
    settings.DARKSERVER_MAX_BATCH = 3
    body = {"buildids": ["12345678"] * 4}
    response = client.post(
        reverse("api-buildids"), json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "too many build-ids: 4, at most 3 per request",
        "status": 413,
        "count": 4,
        "limit": 3,
    }


def test_batch_body_too_large_is_a_413(client, db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"buildids": [APR_ID] * 100}
    response = client.post(
        reverse("api-buildids"), json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "request body too large; at most 1000 bytes",
        "status": 413,
        "limit": 1000,
    }


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/api/v1/",
        "/api/v1/buildid/",
        f"/api/v1/buildid/{APR_ID}/",
        "/api/v2/stats",
        "/buildids/",
    ],
)
def test_unknown_route_is_a_json_404(client, db, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "no such endpoint; the API is described at /api/v1/openapi.json",
        "status": 404,
        "path": path,
    }


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("post", reverse("api-buildid", args=[APR_ID]), "GET, HEAD"),
        ("delete", reverse("compat-buildids", args=[APR_ID]), "GET, HEAD"),
        ("put", reverse("api-stats"), "GET, HEAD"),
        ("post", reverse("index"), "GET, HEAD"),
        ("get", reverse("api-buildids"), "POST"),
        ("head", reverse("api-buildids"), "POST"),
        ("options", reverse("metrics"), "GET, HEAD"),
        # The method is checked before the id: a wrong one is a 405 whatever the id.
        ("post", "/api/v1/buildid/zz", "GET, HEAD"),
        ("delete", "/buildids/zz,", "GET, HEAD"),
        ("put", "/api/v1/prefix/x", "GET, HEAD"),
        ("post", "/rpm2buildids/.rpm", "GET, HEAD"),
    ],
)
def test_wrong_method_is_a_json_405_with_allow(client, db, method, url, allow):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == allow
    assert response["Content-Type"] == "application/json"
    if method != "head":
        assert response.json() == {
            "error": f"method {method.upper()} not allowed here; use {allow}",
            "status": 405,
            "method": method.upper(),
        }


GET_URLS = [
    ("index", []),
    ("compat-buildids", [APR_ID]),
    ("compat-rpm2buildids", ["apr-1.4.5-1.fc16.x86_64"]),
    ("compat-package", ["apr-1.4.5-1.fc16.x86_64"]),
    ("compat-serverversion", []),
    ("api-buildid", [APR_ID]),
    ("api-buildid", ["ab" * 20]),
    ("api-buildid", ["nothex!!"]),
    ("api-prefix", [APR_ID[:16]]),
    ("api-rpm", ["apr-1.4.5-1.fc16.x86_64"]),
    ("api-package", ["apr"]),
    ("api-stats", []),
    ("api-health", []),
    ("api-ready", []),
    ("api-openapi", []),
    ("metrics", []),
]


@pytest.mark.parametrize(("name", "args"), GET_URLS, ids=[f"{n}{a}" for n, a in GET_URLS])
def test_head_agrees_with_get(client, apr, name, args):
    url = reverse(name, args=args)
    got, head = client.get(url), client.head(url)
    assert head.status_code == got.status_code
    assert head.content == b""
    # /metrics counts the GET itself, so its length differs by a digit or two; the page's
    # Content-Security-Policy carries a fresh nonce each time.
    skip = {"Date", "Content-Length"} if name == "metrics" else {"Date"}
    if name == "index":
        skip.add("Content-Security-Policy")
    assert {k: v for k, v in head.headers.items() if k not in skip} == {
        k: v for k, v in got.headers.items() if k not in skip
    }
    assert int(got["Content-Length"]) == len(got.content)


def test_server_error_is_json_without_a_traceback(db, monkeypatch):
    def crash(build_id):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(queries, "by_build_id", crash)
    response = Client(raise_request_exception=False).get(reverse("api-buildid", args=[APR_ID]))
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal error; the server log has the details",
        "status": 500,
    }
    assert b"secret" not in response.content


def test_a_database_error_is_tried_once_more_then_a_json_503(transactional_db, monkeypatch,
                                                               caplog):
    from django.db import OperationalError

    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise OperationalError(2013, "Lost connection to server during query")

    monkeypatch.setattr(queries, "by_path", broken)
    response = Client().get("/api/v1/path?path=/usr/bin/x")
    assert len(calls) == 2  # one more try, on a new connection
    assert (response.status_code, response["Retry-After"]) == (503, "1")
    assert response.json() == {"error": "database unavailable; try again shortly",
                               "status": 503, "retry_after": 1}
    assert "Traceback" not in caplog.text

    real = queries.stats
    calls.clear()

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError(2006, "server has gone away")
        return real(*args, **kwargs)

    monkeypatch.setattr(queries, "stats", flaky)
    response = Client().get("/api/v1/stats")
    assert (response.status_code, len(calls)) == (200, 2)
