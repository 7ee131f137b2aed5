"""The original service's four endpoints (fixed contract, see docs/API.md).

URL converters hand these views normalised build-ids and NVRAs; the shapes are the old ones.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from darkserver import __version__
from darkserver.lookup import metrics, queries, serialize
from darkserver.lookup.errors import api


@api("GET")
def buildids(request: HttpRequest, buildids: list[str]) -> JsonResponse:
    found = queries.by_build_ids(buildids)
    metrics.lookup("compat", len(buildids), len(buildids) - len(found))
    rows = [row for b in buildids for row in found.get(b, ())]
    return JsonResponse(serialize.compat(rows), safe=False)


@api("GET")
def rpm2buildids(request: HttpRequest, nvra: str) -> JsonResponse:
    _package, rows = queries.package_rows(nvra)
    return JsonResponse(serialize.compat(rows), safe=False)


@api("GET")
def package(request: HttpRequest, nvra: str) -> JsonResponse:
    row = queries.package_row(nvra)
    return JsonResponse({"url": serialize.compat_url(row) if row else ""})


@api("GET")
def serverversion(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"server-version": __version__})
