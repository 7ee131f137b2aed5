"""Every Prometheus metric of the web service, declared here and nowhere else.

The metrics live in their own registry so that /metrics shows exactly what is declared (a test
compares the two). Under gunicorn, conf/gunicorn.conf.py sets ``PROMETHEUS_MULTIPROC_DIR`` to a
directory shared by the workers: /metrics then adds up every worker's numbers, those of recycled
workers included.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "darkserver_http_requests",
    "HTTP requests answered, by route name, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "darkserver_http_request_duration_seconds",
    "Time spent answering a request in the application (the fast path or Django's view and "
    "middleware), by route name; the HTTP server's own parsing and writing are not included.",
    ["route"],
    # The targets are a 1 ms median and a 5 ms p99: resolve well around them.
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
    registry=REGISTRY,
)
BUILDIDS_ASKED = Counter(
    "darkserver_lookup_buildids",
    "Build-ids looked up, by endpoint (single, batch, compat).",
    ["endpoint"],
    registry=REGISTRY,
)
BUILDIDS_MISSING = Counter(
    "darkserver_lookup_buildids_missing",
    "Build-ids looked up that matched nothing, by endpoint (single, batch, compat).",
    ["endpoint"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "darkserver_batch_size",
    "Build-ids per batch request.",
    buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
    registry=REGISTRY,
)
FASTPATH_QUERY_IDS = Histogram(
    "darkserver_fastpath_query_ids",
    "Distinct build-ids per query of the fast path's single lookups: the lookups that arrived "
    "together on a worker's event loop and were read at once (lookup/coalesce.py).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
ANSWER_CACHE = Counter(
    "darkserver_answer_cache_buildids",
    "Build-ids the fast path answered, by whether their answer was cached (hit) or read from "
    "the database (miss) (lookup/answercache.py; nothing counted when the cache is off).",
    ["result"],
    registry=REGISTRY,
)

DECLARED = (REQUESTS, LATENCY, BUILDIDS_ASKED, BUILDIDS_MISSING, BATCH_SIZE, FASTPATH_QUERY_IDS,
            ANSWER_CACHE)


def declared_names() -> set[str]:
    """The metric family names of DECLARED, as the registry reports them."""
    return {family.name for metric in DECLARED for family in metric.describe()}


# Label children, cached: ``labels()`` validates and locks on every call (~2 µs each, three to
# four per lookup). Children are never removed from these metrics, so a cached one stays live.
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def lookup(endpoint: str, asked: int, missing: int) -> None:
    _child(BUILDIDS_ASKED, endpoint).inc(asked)
    if missing:
        _child(BUILDIDS_MISSING, endpoint).inc(missing)


def answer_cache(hits: int, misses: int) -> None:
    if hits:
        _child(ANSWER_CACHE, "hit").inc(hits)
    if misses:
        _child(ANSWER_CACHE, "miss").inc(misses)


def request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request: REQUESTS and LATENCY (the middleware and the fast path)."""
    _child(REQUESTS, route, method, str(status)).inc()
    _child(LATENCY, route).observe(seconds)


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated __init__
        return generate_latest(registry)
    return generate_latest(REGISTRY)
