"""Metrics are declared in metrics.py only; the registry holds exactly those; requests count."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

import darkserver
from darkserver.lookup import metrics
from tests.darkserver.conftest import APR_ID

SOURCE = Path(darkserver.__file__).parent
METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


def test_the_registry_holds_exactly_the_declared_metrics():
    registered = {family.name for family in metrics.REGISTRY.collect()}
    assert registered == metrics.declared_names()


def _python_files():
    return [p for p in SOURCE.rglob("*.py") if "migrations" not in p.parts]


def test_code_uses_only_declared_metrics():
    declared = {name for name in dir(metrics) if getattr(metrics, name) in metrics.DECLARED}
    helpers = {"REGISTRY", "DECLARED", "CONTENT_TYPE", "declared_names", "lookup", "request",
               "answer_cache", "exposition"}
    used = set()
    for path in _python_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "metrics"
            ):
                used.add((node.attr, str(path.relative_to(SOURCE))))
    undeclared = {(attr, where) for attr, where in used if attr not in declared | helpers}
    assert used and not undeclared


def test_no_module_but_metrics_creates_a_metric():
    for path in _python_files():
        if path == Path(metrics.__file__):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("prometheus")
            ):
                assert not METRIC_TYPES & {a.name for a in node.names}, path


def _samples(client):
    text = client.get(reverse("metrics")).content.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_per_route_and_lookups_per_endpoint(client, apr):
    before = _samples(client)
    client.get(reverse("api-buildid", args=[APR_ID]))
    client.get(reverse("api-buildid", args=["00" * 20]))
    client.get(reverse("api-buildid", args=["xx"]))
    client.get("/nowhere")
    client.post(
        reverse("api-buildids"),
        json.dumps({"buildids": [APR_ID, "11" * 8]}),
        content_type="application/json",
    )
    after = _samples(client)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    requests = "darkserver_http_requests_total"
    assert delta(requests, route="api-buildid", method="GET", status="200") == 1
    assert delta(requests, route="api-buildid", method="GET", status="404") == 1
    # A malformed id still resolves to its route (the view answers the 400).
    assert delta(requests, route="api-buildid", method="GET", status="400") == 1
    assert delta(requests, route="unresolved", method="GET", status="404") == 1
    assert delta(requests, route="api-buildids", method="POST", status="200") == 1
    assert delta("darkserver_http_request_duration_seconds_count", route="api-buildid") == 3
    assert delta("darkserver_lookup_buildids_total", endpoint="single") == 2
    assert delta("darkserver_lookup_buildids_missing_total", endpoint="single") == 1
    assert delta("darkserver_lookup_buildids_total", endpoint="batch") == 2
    assert delta("darkserver_lookup_buildids_missing_total", endpoint="batch") == 1
    assert delta("darkserver_batch_size_count") == 1


def test_metrics_content_type(client, db):
    response = client.get(reverse("metrics"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
