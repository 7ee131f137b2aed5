"""The original service's four endpoints (fixed contract, see docs/API.md).

URL converters hand these views normalised build-ids and NVRAs; the shapes are the old ones.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from darkserver import __version__
from darkserver.lookup import answers, queries, serialize
from darkserver.lookup.errors import api
from darkserver.lookup.jsonout import json_response


@api("GET")
def buildids(request: HttpRequest, buildids: list[str]) -> HttpResponse:
    return answers.response(answers.compat_buildids(buildids))


@api("GET")
def rpm2buildids(request: HttpRequest, nvra: str) -> HttpResponse:
    _package, rows = queries.package_rows(nvra)
    return json_response(serialize.compat(rows))


@api("GET")
def package(request: HttpRequest, nvra: str) -> HttpResponse:
    row = queries.package_row(nvra)
    return json_response({"url": serialize.compat_url(row) if row else ""})


@api("GET")
def serverversion(request: HttpRequest) -> HttpResponse:
    return json_response({"server-version": __version__})
