"""The hot lookups served in front of Django: a WSGI layer wrapped around Django's handler.

Three routes carry nearly all of the traffic — ``GET/HEAD /buildids/<ids>``, ``GET/HEAD
/api/v1/buildid/<id>`` and ``POST /api/v1/buildids`` — and for them Django's own machinery
(``HttpRequest``, URL resolving, middleware, ``HttpResponse``) costs more than the database
query does. This layer recognises those routes with string tests, validates with the converters'
functions, answers through the functions the Django views call (``answers.py``: same queries,
same serializer, same JSON encoder), and sends the same status, headers and bytes the views
send (tests/darkserver/test_fastpath.py compares the two). It counts the same metrics, and
keeps Django's connection lifecycle by sending ``request_started`` / ``request_finished``
(whose receiver, ``close_old_connections``, drops broken and expired connections).

Anything unusual goes to Django unchanged, so error handling stays in one place: another path
or method, a malformed id, a batch body that is missing, chunked, oversized, not JSON, of the
wrong shape or too long. A failure while answering (a database error, say) is logged and the
request is handed to Django too, which answers it or returns its JSON 500 — never a traceback.

``DARKSERVER_FASTPATH=0`` leaves it out (darkserver/wsgi.py).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core import signals

from darkserver.lookup import answers, metrics, queries
from darkserver.lookup.converters import normalize_build_id, normalize_build_id_list
from darkserver.lookup.jsonout import CONTENT_TYPE, dumps

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Route = tuple[str, Callable[[], answers.Answer]]

COMPAT = "/buildids/"
SINGLE = "/api/v1/buildid/"
BATCH = "/api/v1/buildids"
# The status line Django writes: code and http.client's reason phrase.
_STATUS = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


def _segment(path: str, prefix: str) -> str | None:
    """The one path segment after ``prefix``, or None (Django's ``[^/]+``)."""
    segment = path[len(prefix):]
    return segment if segment and "/" not in segment else None


def wants_body(method: str, path: str) -> bool:
    """Whether the request is a batch, whose body the fast path must read to route it."""
    return method == "POST" and path == BATCH


def body_length(content_length: str | None) -> int | None:
    """The length of a batch body that Django would read without complaint, or None (no or a
    bad Content-Length, or over DATA_UPLOAD_MAX_MEMORY_SIZE: Django answers those)."""
    try:
        length = int(content_length or "")
    except ValueError:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length <= 0 or (limit is not None and length > limit):
        return None
    return length


def _batch_body(environ: dict[str, Any]) -> bytes | None:
    """The WSGI request's batch body, or None; what was read is put back for Django."""
    length = body_length(environ.get("CONTENT_LENGTH"))
    if length is None:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def route(method: str, path: str, body: bytes | None,
          fetch: queries.Fetch | None = None) -> Route | None:
    """The route name and the answer to compute, when the fast path serves the request.

    ``body`` is the batch body (None when it was not read); ``fetch`` runs the lookup query
    (Django's connection when None).
    """
    try:
        if method == "GET" or method == "HEAD":
            if path.startswith(SINGLE):
                segment = _segment(path, SINGLE)
                if segment is not None:
                    buildid = normalize_build_id(segment)
                    return "api-buildid", lambda: answers.single(buildid, fetch)
            elif path.startswith(COMPAT):
                segment = _segment(path, COMPAT)
                if segment is not None:
                    ids = normalize_build_id_list(segment)
                    return "compat-buildids", lambda: answers.compat_buildids(ids, fetch)
        elif body is not None and wants_body(method, path):
            batch = answers.batch_ids(body)
            return "api-buildids", lambda: answers.batch(batch, fetch)
    except Exception:  # a bad id or body: Django answers with the error document
        return None
    return None


class FastPath:
    """WSGI middleware: the hot lookups here, everything else to ``app`` (Django)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        body = _batch_body(environ) if wants_body(method, path) else None
        found = route(method, path, body)
        if found is None:
            return self.app(environ, start_response)
        name, compute = found
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            status, doc, extra = compute()
            body = dumps(doc)
        except Exception as exc:
            log.warning("fast path failed (%r); Django answers %s %s", exc,
                        environ["REQUEST_METHOD"], environ.get("PATH_INFO"))
            return self.app(environ, start_response)
        finally:
            signals.request_finished.send(sender=self.__class__)
        start_response(_STATUS[status], [
            ("Content-Type", CONTENT_TYPE), *extra, ("Content-Length", str(len(body))),
        ])
        metrics.request(name, method, status, time.perf_counter() - started)
        # HEAD: the GET's headers, no body (gunicorn drops it anyway; not every server does).
        return [b"" if method == "HEAD" else body]
