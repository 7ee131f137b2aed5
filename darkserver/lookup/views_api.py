"""/api/v1/: the versioned JSON API (docs/API.md, openapi.json). Each view takes validated input
from its URL converter or ``answers.batch_ids``, calls one query function and returns JSON."""

from __future__ import annotations

import functools
from importlib import resources

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from darkserver.lookup import answers, metrics, queries, serialize
from darkserver.lookup.errors import ApiError, api, error_response
from darkserver.lookup.jsonout import json_response


@api("GET")
def buildid(request: HttpRequest, buildid: str) -> HttpResponse:
    return answers.response(answers.single(buildid))


@api("GET")
def sources(request: HttpRequest, buildid: str) -> HttpResponse:
    """GET /api/v1/buildid/<id>/sources: the packages holding the sources of the builds that
    contain this build-id (-debugsource rpms); 404 when the id is unknown. Not on the fast
    path: a debugger asks for it once per build, not once per module."""
    rows = queries.by_build_id(buildid)
    if not rows:
        return answers.response(answers.single(buildid))  # the same 404 document
    found = queries.source_rows({r["package_id"] for r in rows})
    return json_response({"buildid": buildid, "sources": serialize.sources(found)})


@api("POST")
def batch(request: HttpRequest) -> HttpResponse:
    body = request.body
    if not body and "chunked" in request.headers.get("Transfer-Encoding", ""):
        # Django reads no body without a Content-Length; say so instead of "not JSON".
        raise ApiError("send the batch with a Content-Length header, not chunked", status=411)
    return answers.response(answers.batch(answers.batch_ids(body)))


@api("GET")
def prefix(request: HttpRequest, prefix: str) -> HttpResponse:
    rows, truncated = queries.by_prefix(prefix, settings.DARKSERVER_MAX_MATCHES)
    return json_response(
        {"prefix": prefix, "matches": serialize.matches(rows), "truncated": truncated}
    )


@api("GET")
def rpm(request: HttpRequest, nvra: str) -> HttpResponse:
    package, rows = queries.package_rows(nvra)
    if package is None:
        return error_response(404, "package not found", nvra=nvra, searched="package NVRA")
    shared = serialize.Matches()
    package_doc, build_doc, urls = shared.package_parts(package)
    return json_response({
        "package": package_doc, "build": build_doc, "urls": urls,
        "files": [shared.match(row) for row in rows],
    })


@api("GET")
def package(request: HttpRequest, name: str) -> HttpResponse:
    builds = queries.builds_of(name)
    if not builds:
        return error_response(
            404, "package not found", name=name, searched="build names and binary package names"
        )
    return json_response({"name": name, "builds": builds})


@api("GET")
def path(request: HttpRequest) -> HttpResponse:
    wanted = request.GET.get("path", "")
    if not wanted.startswith("/"):
        raise ApiError("give an absolute install path: /api/v1/path?path=/usr/bin/foo", path=wanted)
    rows, truncated = queries.by_path(wanted, settings.DARKSERVER_MAX_MATCHES)
    return json_response(
        {"path": wanted, "matches": serialize.matches(rows), "truncated": truncated}
    )


@api("GET")
def stats(request: HttpRequest) -> HttpResponse:
    return json_response(queries.stats())


@api("GET")
def health(request: HttpRequest) -> HttpResponse:
    return json_response({"status": "ok"})


@api("GET")
def ready(request: HttpRequest) -> HttpResponse:
    ok, parts = queries.readiness()
    status = "ok" if ok else "unavailable"
    return json_response({"status": status, **parts}, status=200 if ok else 503)


@functools.cache
def _openapi() -> bytes:
    return resources.files("darkserver.lookup").joinpath("openapi.json").read_bytes()


@api("GET")
def openapi(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_openapi(), content_type="application/json")


@api("GET")
def prometheus(request: HttpRequest) -> HttpResponse:
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)


