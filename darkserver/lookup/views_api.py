"""/api/v1/: the versioned JSON API (docs/API.md, openapi.json). Each view takes validated input
from its URL converter or ``_batch_ids``, calls one query function and returns JSON."""

from __future__ import annotations

import functools
import json
from importlib import resources

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from darkserver.lookup import metrics, queries, serialize
from darkserver.lookup.converters import normalize_build_id
from darkserver.lookup.errors import ApiError, BadBuildId, api, error_response

BATCH_SHAPE = 'send a JSON object with a list of build-ids: {"buildids": ["<hex>", ...]}'


@api("GET")
def buildid(request: HttpRequest, buildid: str) -> JsonResponse:
    rows = queries.by_build_id(buildid)
    metrics.lookup("single", 1, 0 if rows else 1)
    if not rows:
        return error_response(
            404, "build-id not found", buildid=buildid,
            searched="exact build-id among the ELF files of every imported package",
        )
    return JsonResponse({"buildid": buildid, "matches": serialize.matches(rows)})


def _batch_ids(request: HttpRequest) -> list[str]:
    """The normalised, de-duplicated ids of a batch body, or an ApiError saying what is wrong."""
    body = request.body
    if not body and "chunked" in request.headers.get("Transfer-Encoding", ""):
        # Django reads no body without a Content-Length; say so instead of "not JSON".
        raise ApiError("send the batch with a Content-Length header, not chunked", status=411)
    try:
        doc = json.loads(body)
    except ValueError as exc:  # includes bytes that are not UTF-8
        raise ApiError(f"request body is not JSON ({exc}); {BATCH_SHAPE}") from exc
    ids = doc.get("buildids") if isinstance(doc, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ApiError(BATCH_SHAPE)
    limit = settings.DARKSERVER_MAX_BATCH
    if len(ids) > limit:
        raise ApiError(
            f"too many build-ids: {len(ids)}, at most {limit} per request",
            status=413, count=len(ids), limit=limit,
        )
    normalised = []
    for index, value in enumerate(ids):
        try:
            normalised.append(normalize_build_id(value))
        except BadBuildId as exc:
            exc.extra["index"] = index
            raise
    return list(dict.fromkeys(normalised))


@api("POST")
def batch(request: HttpRequest) -> JsonResponse:
    ids = _batch_ids(request)
    found = queries.by_build_ids(ids)
    metrics.BATCH_SIZE.observe(len(ids))
    metrics.lookup("batch", len(ids), len(ids) - len(found))
    shared = serialize.Matches()
    return JsonResponse({
        "results": {b: [shared.match(row) for row in found[b]] for b in ids if b in found},
        "missing": [b for b in ids if b not in found],
    })


@api("GET")
def prefix(request: HttpRequest, prefix: str) -> JsonResponse:
    rows, truncated = queries.by_prefix(prefix, settings.DARKSERVER_MAX_MATCHES)
    return JsonResponse(
        {"prefix": prefix, "matches": serialize.matches(rows), "truncated": truncated}
    )


@api("GET")
def rpm(request: HttpRequest, nvra: str) -> JsonResponse:
    package, rows = queries.package_rows(nvra)
    if package is None:
        return error_response(404, "package not found", nvra=nvra, searched="package NVRA")
    shared = serialize.Matches()
    package_doc, build_doc, urls = shared.package_parts(package)
    return JsonResponse({
        "package": package_doc, "build": build_doc, "urls": urls,
        "files": [shared.match(row) for row in rows],
    })


@api("GET")
def package(request: HttpRequest, name: str) -> JsonResponse:
    builds = queries.builds_of(name)
    if not builds:
        return error_response(
            404, "package not found", name=name, searched="build names and binary package names"
        )
    return JsonResponse({"name": name, "builds": builds})


@api("GET")
def path(request: HttpRequest) -> JsonResponse:
    wanted = request.GET.get("path", "")
    if not wanted.startswith("/"):
        raise ApiError("give an absolute install path: /api/v1/path?path=/usr/bin/foo", path=wanted)
    rows, truncated = queries.by_path(wanted, settings.DARKSERVER_MAX_MATCHES)
    return JsonResponse(
        {"path": wanted, "matches": serialize.matches(rows), "truncated": truncated}
    )


@api("GET")
def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse(queries.stats())


@api("GET")
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@api("GET")
def ready(request: HttpRequest) -> JsonResponse:
    ok, parts = queries.readiness()
    status = "ok" if ok else "unavailable"
    return JsonResponse({"status": status, **parts}, status=200 if ok else 503)


@functools.cache
def _openapi() -> bytes:
    return resources.files("darkserver.lookup").joinpath("openapi.json").read_bytes()


@api("GET")
def openapi(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_openapi(), content_type="application/json")


@api("GET")
def prometheus(request: HttpRequest) -> HttpResponse:
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)


