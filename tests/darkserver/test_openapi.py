"""The served OpenAPI document is valid JSON, describes every route, and only real ones."""

from __future__ import annotations

import json
import re

import jsonschema
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.darkserver.conftest import APR_ID


def _routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + str(p.pattern))


def _document(client):
    response = client.get(reverse("api-openapi"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_document_lists_exactly_the_routes_of_the_urlconf(client):
    doc = _document(client)
    routes = set(_routes(get_resolver().url_patterns))
    assert {r for r in routes if r.startswith("/api/v1/")} <= set(doc["paths"])
    assert set(doc["paths"]) == routes


def test_document_path_parameters_match_the_routes(client):
    for route, operations in _document(client)["paths"].items():
        names = set(re.findall(r"{(\w+)}", route))
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (route, method)


def test_document_operations_name_methods_the_views_allow(client):
    for route, operations in _document(client)["paths"].items():
        for method, op in operations.items():
            assert method in {"get", "post"}, route
            assert {"summary", "operationId", "responses"} <= set(op), route
            assert "405" in op["responses"], route


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_document_is_openapi_3_and_every_reference_resolves(client):
    doc = _document(client)
    assert doc["openapi"].startswith("3.")
    assert {"title", "version"} <= set(doc["info"])
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        _hash, _components, kind, name = ref.split("/")
        assert kind in ("schemas", "responses") and name in doc["components"][kind], ref


def test_document_schemas_are_valid_json_schema(client):
    # OpenAPI 3.1 schemas are JSON Schema 2020-12.
    for schema in _document(client)["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def _validator(doc, path, method="get", status="200"):
    response = doc["paths"][path][method]["responses"][status]
    if "$ref" in response:  # a shared response: #/components/responses/<name>
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    # The document's components travel along so that "#/components/schemas/..." resolves.
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


def test_real_responses_follow_the_document(client, apr):
    doc = _document(client)
    nvra = "apr-1.4.5-1.fc16.x86_64"
    cases = [
        ("/api/v1/buildid/{buildid}", reverse("api-buildid", args=[APR_ID]), "200"),
        ("/api/v1/buildid/{buildid}", reverse("api-buildid", args=["00" * 20]), "404"),
        ("/api/v1/buildid/{buildid}", reverse("api-buildid", args=["0"]), "400"),
        ("/api/v1/prefix/{prefix}", reverse("api-prefix", args=[APR_ID[:16]]), "200"),
        ("/api/v1/rpm/{nvra}", reverse("api-rpm", args=[nvra]), "200"),
        ("/api/v1/package/{name}", reverse("api-package", args=["apr"]), "200"),
        ("/api/v1/path", reverse("api-path") + "?path=/usr/lib64/libapr-1.so.0.4.5", "200"),
        ("/api/v1/stats", reverse("api-stats"), "200"),
        ("/api/v1/health", reverse("api-health"), "200"),
        ("/api/v1/health/ready", reverse("api-ready"), "200"),
        ("/buildids/{buildids}", reverse("compat-buildids", args=[APR_ID]), "200"),
        ("/rpm2buildids/{nvra}", reverse("compat-rpm2buildids", args=[nvra]), "200"),
        ("/package/{nvra}", reverse("compat-package", args=[nvra]), "200"),
        ("/serverversion", reverse("compat-serverversion"), "200"),
        # The 400s the converters make, each documented where it can happen.
        ("/api/v1/rpm/{nvra}", "/api/v1/rpm/.rpm", "400"),
        ("/rpm2buildids/{nvra}", "/rpm2buildids/.deb", "400"),
        ("/package/{nvra}", "/package/.rpm", "400"),
        ("/buildids/{buildids}", f"/buildids/{APR_ID},abc", "400"),
        ("/api/v1/prefix/{prefix}", "/api/v1/prefix/0", "400"),
        ("/api/v1/path", "/api/v1/path?path=", "400"),
    ]
    for path, url, status in cases:
        response = client.get(url)
        assert str(response.status_code) == status, url
        _validator(doc, path, status=status).validate(response.json())
    response = client.post(
        reverse("api-buildids"),
        json.dumps({"buildids": [APR_ID, "00" * 8]}),
        content_type="application/json",
    )
    _validator(doc, "/api/v1/buildids", "post").validate(response.json())
