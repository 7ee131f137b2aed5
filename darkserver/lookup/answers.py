"""The three hot lookups, from validated input to (status, document, extra headers).

Both the Django views (views_compat.buildids, views_api.buildid, views_api.batch) and the fast
path in front of Django (fastpath.py) answer through these functions, so the two can only differ
in how the request reaches them. Each counts its lookup metrics.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from darkserver.lookup import metrics, queries, serialize
from darkserver.lookup.converters import normalize_build_id
from darkserver.lookup.errors import ERROR_HEADERS, ApiError, BadBuildId, error_doc
from darkserver.lookup.jsonout import json_response

Answer = tuple[int, Any, tuple[tuple[str, str], ...]]

BATCH_SHAPE = 'send a JSON object with a list of build-ids: {"buildids": ["<hex>", ...]}'
NOT_FOUND_SEARCHED = "exact build-id among the ELF files of every imported package"


def compat_buildids(buildids: list[str], fetch: queries.Fetch | None = None) -> Answer:
    """GET /buildids/<id>[,<id>...]: the original service's list (empty when nothing matched)."""
    found = queries.by_build_ids(buildids, fetch)
    metrics.lookup("compat", len(buildids), len(buildids) - len(found))
    rows = [row for b in buildids for row in found.get(b, ())]
    return 200, serialize.compat(rows), ()


def single(buildid: str, fetch: queries.Fetch | None = None) -> Answer:
    """GET /api/v1/buildid/<id>: every match, or a 404 echoing the id and what was searched."""
    rows = queries.by_build_id(buildid, fetch)
    metrics.lookup("single", 1, 0 if rows else 1)
    if not rows:
        doc = error_doc(404, "build-id not found", buildid=buildid, searched=NOT_FOUND_SEARCHED)
        return 404, doc, ERROR_HEADERS
    return 200, {"buildid": buildid, "matches": serialize.matches(rows)}, ()


def batch_ids(body: bytes) -> list[str]:
    """The normalised, de-duplicated ids of a batch body, or an ApiError saying what is wrong."""
    try:
        doc = json.loads(body)
    except ValueError as exc:  # includes bytes that are not UTF-8
        raise ApiError(f"request body is not JSON ({exc}); {BATCH_SHAPE}") from exc
    except RecursionError:  # found by fuzzing: ~1,000 nested arrays are 2 KB of body
        raise ApiError(f"request body is nested too deeply; {BATCH_SHAPE}") from None
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


def batch(ids: list[str], fetch: queries.Fetch | None = None) -> Answer:
    """POST /api/v1/buildids: matches per found id, and the ids that matched nothing."""
    found = queries.by_build_ids(ids, fetch)
    metrics.BATCH_SIZE.observe(len(ids))
    metrics.lookup("batch", len(ids), len(ids) - len(found))
    shared = serialize.Matches()
    return 200, {
        "results": {b: [shared.match(row) for row in found[b]] for b in ids if b in found},
        "missing": [b for b in ids if b not in found],
    }, ()


def response(result: Answer) -> HttpResponse:
    """The Django response of an answer; fastpath.py sends the same status, headers and bytes."""
    status, doc, headers = result
    out = json_response(doc, status=status)
    for name, value in headers:
        out[name] = value
    return out
