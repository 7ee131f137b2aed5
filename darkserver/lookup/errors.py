"""Every error is a JSON document ``{"error": <message>, "status": N, ...}``, never HTML.

Views raise :class:`ApiError`; URL converters hand the view an :class:`Invalid` holding one
(so that the method is checked first). The :func:`api` view decorator and the handlers below
(wired in ``darkserver/urls.py``) turn them into responses; a database that fails twice is a
503 there, never a 500. An ``ApiError`` is also a Django ``BadRequest``, so that one raised
outside a view still reaches ``handler400``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse

from darkcore import buildid
from darkserver.lookup.jsonout import json_response

BUILD_ID_RULE = buildid.RULE  # one rule: darkcore.buildid
RETRY_AFTER = 1  # seconds a client should wait after a 503

log = logging.getLogger(__name__)


# A client that retries on errors should not cache them either.
ERROR_HEADERS = (("Cache-Control", "no-store"),)


def error_doc(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, "status": status, **extra}


def error_response(status: int, message: str, **extra: Any) -> HttpResponse:
    response = json_response(error_doc(status, message, **extra), status=status)
    for name, value in ERROR_HEADERS:
        response[name] = value
    return response


class ApiError(BadRequest):
    """An error with its HTTP status and the keys that echo what the client sent."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.extra = extra

    def response(self) -> HttpResponse:
        return error_response(self.status, self.message, **self.extra)


class BadBuildId(ApiError):
    """A malformed build-id (or build-id prefix); echoes it and states the rule."""

    def __init__(self, value: str, rule: str = BUILD_ID_RULE, **extra: Any) -> None:
        super().__init__(f"malformed build-id {value!r}: {rule}", buildid=value, **extra)


class Invalid:
    """A path segment its converter rejected, and the error that says why."""

    __slots__ = ("error",)

    def __init__(self, error: ApiError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Invalid({self.error.message!r})"


def _drop_broken_connections() -> bool:
    """Close the connections a database error left unusable, so the next query opens a new
    one; False when one cannot be closed (inside a transaction: the tests' own)."""
    retry = True
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block:
            retry = False
        elif conn.connection is not None and not conn.is_usable():
            conn.close()
    return retry


def api(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Allow only ``methods`` (GET brings HEAD, answered like GET) with a JSON 405 and ``Allow``
    otherwise; then answer a path value its converter rejected (converters.Invalid) with its
    400, and turn the view's ``ApiError`` and an oversized body into JSON responses."""
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())
    allow = ", ".join(sorted(allowed))

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = error_response(
                    405, f"method {request.method} not allowed here; use {allow}",
                    method=request.method,
                )
                response["Allow"] = allow
                return response
            for value in kwargs.values():
                if isinstance(value, Invalid):  # a path segment its converter rejected
                    return value.error.response()
            try:
                try:
                    return view(request, *args, **kwargs)
                except DatabaseError as exc:
                    # Every view only reads: after a connection the server dropped (a restart,
                    # a kill, wait_timeout), one more try on a new connection loses nothing.
                    if not _drop_broken_connections():
                        raise
                    log.warning("database error (%s); trying %s once more", exc, request.path)
                    return view(request, *args, **kwargs)
            except DatabaseError as exc:
                log.warning("database unavailable (%s): 503 for %s %s", exc, request.method,
                            request.path)
                response = error_response(
                    503, "database unavailable; try again shortly", retry_after=RETRY_AFTER)
                response["Retry-After"] = str(RETRY_AFTER)
                return response
            except ApiError as exc:
                return exc.response()
            except RequestDataTooBig:
                # Raised by request.body when Content-Length exceeds the setting.
                return error_response(
                    413,
                    f"request body too large; at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes",
                    limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
                )

        return wrapper

    return decorate


# handler400/403/404/500 of darkserver/urls.py. Django calls them only with DEBUG off; with
# DEBUG on it shows its own pages, which is what a developer wants.


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, ApiError):
        return exception.response()
    return error_response(400, "bad request")


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(403, "forbidden")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        404, "no such endpoint; the API is described at /api/v1/openapi.json", path=request.path
    )


def server_error(request: HttpRequest) -> HttpResponse:
    # The traceback goes to the log (django.request), never to the client.
    return error_response(500, "internal error; the server log has the details")
