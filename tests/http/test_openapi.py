"""The OpenAPI document: it covers exactly the app's routes, validates as 3.1; the docs page."""

import re

import jsonschema_rs
import pytest
import schemathesis

from service.http import create_app
from service.http.openapi import DOCUMENT

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture
def client(settings):
    return create_app(settings, start=False).test_client()  # no model needed to read docs


def openapi_path(rule: str) -> str:
    """Flask's /models/<name>/versions/<int:v> → OpenAPI's /models/{name}/versions/{v}."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_route_is_documented_and_every_documented_operation_exists(client):
    routes = {
        (openapi_path(rule.rule), method.lower())
        for rule in client.application.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method)
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
        if method in METHODS
    }
    assert routes == documented


def test_path_parameters_match_their_templates():
    for path, operations in DOCUMENT["paths"].items():
        template = set(re.findall(r"{([^}]+)}", path))
        for method, operation in operations.items():
            given = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert given == template, f"{method.upper()} {path}"


def test_the_document_is_valid_openapi_3_1_with_valid_schemas_and_refs():
    assert DOCUMENT["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(DOCUMENT).validate()  # the OpenAPI 3.1 meta-schema
    for name, schema in DOCUMENT["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name  # JSON Schema 2020-12
    for ref in re.findall(r"'\$ref': '#/([^']+)'", str(DOCUMENT)):
        node = DOCUMENT
        for part in ref.split("/"):
            node = node[part]  # KeyError: a dangling $ref


def test_every_operation_documents_its_errors():
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert statuses & {"200"}, f"{method.upper()} {path}"
            if "{" in path or method != "get":  # anything that takes input can refuse it
                assert statuses - {"200"}, f"{method.upper()} {path} documents no error"


def test_served_document_and_docs_page_without_any_cdn(client):
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.get_json() == DOCUMENT
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html
    assert "http://" not in html
    assert "https://" not in html
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 1000
    assert client.get("/docs/../../service/settings.py").status_code == 404
    assert client.get("/docs/no-such-file.js").status_code == 404
