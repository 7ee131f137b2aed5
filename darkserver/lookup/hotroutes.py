"""The three hot lookups, in the one table that both Django's URLconf (urls.py) and the ASGI fast
path in front of Django (fastpath_asgi.py) route from.

``GET/HEAD /buildids/<ids>``, ``GET/HEAD /api/v1/buildid/<id>`` and ``POST /api/v1/buildids``
carry nearly all of the traffic. Each entry holds Django's own ``URLPattern`` (urls.py puts it
in ``urlpatterns`` first, unchanged), the methods it serves and the answer function its view
calls (answers.py). The fast path matches a request against the same patterns, with the same
converters, so the two cannot disagree on what a URL means; it answers only what the view
would answer with a 2xx/404 lookup and hands everything else (another method, a malformed id,
a bad body) to Django, so that every error is made in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, path, register_converter

from darkserver.lookup import answers, fragments, views_api, views_compat
from darkserver.lookup.converters import CONVERTERS
from darkserver.lookup.errors import ApiError, Invalid
from darkserver.lookup.queries import Fetch

for _name, _converter in CONVERTERS.items():
    register_converter(_converter, _name)

Compute = Callable[[], answers.Answer]
GET = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})


@dataclass(frozen=True, slots=True)
class HotRoute:
    pattern: URLPattern
    methods: frozenset[str]
    # The lookup, from the converted URL values (or the batch's ids) to the view's answer.
    answer: Callable[[dict[str, Any], Fetch | None], answers.Answer]
    # The build-ids the lookup reads, from its values (lookup_values: the batch's from its
    # body), as the answer lists them.
    lookup_ids: Callable[[dict[str, Any]], list[str]]
    # How the answer is put together from per-id fragments (the answer cache's).
    form: fragments.Form
    body: bool = False  # the input is the request body (the batch, run on a thread), not the URL

    @property
    def name(self) -> str:
        return str(self.pattern.name)


def _compat(values: dict[str, Any], fetch: Fetch | None) -> answers.Answer:
    return answers.compat_buildids(values["buildids"], fetch)


def _single(values: dict[str, Any], fetch: Fetch | None) -> answers.Answer:
    return answers.single(values["buildid"], fetch)


def _batch(values: dict[str, Any], fetch: Fetch | None) -> answers.Answer:
    return answers.batch(values["buildids"], fetch)


ROUTES = (
    HotRoute(path("buildids/<buildids:buildids>", views_compat.buildids,
                  name="compat-buildids"), GET, _compat, lambda v: list(v["buildids"]),
             fragments.COMPAT),
    HotRoute(path("api/v1/buildid/<buildid:buildid>", views_api.buildid, name="api-buildid"),
             GET, _single, lambda v: [v["buildid"]], fragments.SINGLE),
    HotRoute(path("api/v1/buildids", views_api.batch, name="api-buildids"), POST, _batch,
             lambda v: list(v["buildids"]), fragments.BATCH, body=True),
)
urlpatterns = [hot.pattern for hot in ROUTES]


def match(method: str, url_path: str) -> tuple[HotRoute, dict[str, Any]] | None:
    """The hot route that serves ``method`` on ``url_path``, and its converted URL values."""
    if not url_path.startswith("/"):
        return None
    rest = url_path[1:]
    for hot in ROUTES:
        if method in hot.methods:
            found = hot.pattern.pattern.match(rest)
            if found is not None and not found[0]:
                return hot, found[2]
    return None


def route(method: str, url_path: str, body: bytes | None,
          fetch: Fetch | None = None) -> tuple[str, Compute] | None:
    """The route name and the answer to compute, when the fast path serves the request; None
    when Django is to answer it (not a hot route, a malformed value, a bad batch body).

    ``body`` is the batch body (None when it was not read); ``fetch`` runs the lookup query
    (Django's connection when None).
    """
    found = match(method, url_path)
    if found is None:
        return None
    compute = prepare(*found, body, fetch)
    return None if compute is None else (found[0].name, compute)


def prepare(hot: HotRoute, values: dict[str, Any], body: bytes | None,
            fetch: Fetch | None = None) -> Compute | None:
    """The answer to compute for a matched route (see :func:`route`), or None."""
    checked = lookup_values(hot, values, body)
    if checked is None:
        return None
    return lambda: hot.answer(checked, fetch)


def lookup_values(hot: HotRoute, values: dict[str, Any],
                  body: bytes | None) -> dict[str, Any] | None:
    """The values a matched route's lookup takes (the batch's ids read from its body), or None
    when Django is to answer (see :func:`route`)."""
    if any(isinstance(value, Invalid) for value in values.values()):
        return None
    if hot.body:
        if body is None:
            return None
        try:
            return {"buildids": answers.batch_ids(body)}
        except ApiError:
            return None
    return values
