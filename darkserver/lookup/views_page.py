"""``/``: one self-contained HTML page: what the service is, the API, and a search box."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from darkserver import __version__
from darkserver.lookup.errors import api

EXAMPLE_ID = "868357887701f51d867eacd0da6e5af6d8c70ce2"


@api("GET")
def index(request: HttpRequest) -> HttpResponse:
    base = request.build_absolute_uri("/").rstrip("/")
    return render(
        request, "index.html", {"base": base, "version": __version__, "example": EXAMPLE_ID}
    )
