"""The only middleware: request count and latency per route name (metrics.py declares them).

It also sets Content-Length, so gunicorn sends a plain body instead of chunked encoding and a
HEAD answer carries the same headers as the GET it stands for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from darkserver.lookup import metrics

_METHODS = frozenset({"GET", "HEAD", "POST"})


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        if not response.streaming and "Content-Length" not in response:
            response["Content-Length"] = str(len(response.content))
        # No match: an unknown route (404). A malformed id resolves to its route (converters.py).
        match = request.resolver_match
        route = match.url_name if match is not None and match.url_name else "unresolved"
        method = request.method if request.method in _METHODS else "other"
        metrics.request(route, method, response.status_code, time.perf_counter() - started)
        return response
