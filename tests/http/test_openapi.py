"""The OpenAPI document: exactly the app's routes, valid 3.1, real answers match it; docs page."""

import base64
import re
from urllib.parse import urlsplit

import jsonschema_rs
import pytest
import schemathesis

from service.http import create_app
from service.settings import Settings
from tests.conftest import MODEL
from tests.http.checks import AUTH, upload
from tests.images import checkerboard, dark_images, png
from tests.shipped import copy_shipped

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture
def client(settings):
    return create_app(settings, start=False).test_client()  # no model needed to read docs


@pytest.fixture
def document(client):
    """The document as the app serves it."""
    return client.get("/openapi.json").get_json()


def openapi_path(rule: str) -> str:
    """Flask's /models/<name>/versions/<int:v> → OpenAPI's /models/{name}/versions/{v}."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_route_is_documented_and_every_documented_operation_exists(client, document):
    routes = {
        (openapi_path(rule.rule), method.lower())
        for rule in client.application.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
        if method in METHODS
    }
    assert routes == documented


def test_path_parameters_match_their_templates(document):
    for path, operations in document["paths"].items():
        template = set(re.findall(r"{([^}]+)}", path))
        for method, operation in operations.items():
            given = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert given == template, f"{method.upper()} {path}"


def test_the_document_is_valid_openapi_3_1_with_valid_schemas_and_refs(document):
    assert document["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name  # JSON Schema 2020-12
    for ref in re.findall(r"'\$ref': '#/([^']+)'", str(document)):
        node = document
        for part in ref.split("/"):
            node = node[part]  # KeyError: a dangling $ref


def test_every_operation_documents_its_errors(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert statuses & {"200"}, f"{method.upper()} {path}"
            if "{" in path or method != "get":  # anything that takes input can refuse it
                assert statuses - {"200"}, f"{method.upper()} {path} documents no error"


def test_served_document_and_docs_page_without_any_cdn(client):
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.get_json()["info"]["title"] == "fashion-serve"
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


@pytest.fixture
def shipped(tmp_path):
    """An app over a copy of the shipped registry: real cards, an MLP (1) and a CNN (2)."""
    root = tmp_path / "models"
    copy_shipped(root)
    app = create_app(Settings(model_dir=root, reload_interval=60, admin_token="s3cret-token"))
    yield app
    app.extensions["fashion_serve"].close()


def exchanges() -> list[tuple[str, str, dict]]:
    """A request for every operation that answers JSON, and some that fail (method, url, args)."""
    image = png(dark_images(1)[0])
    pixels = (dark_images(1)[0] / 255).tolist()
    tensor = {"name": "image", "datatype": "FP32", "shape": [1, 28, 28], "data": pixels}
    top = {"name": "probabilities", "parameters": {"classification": 3}}
    v2, v1, models = f"/v2/models/{MODEL}", f"/v1/models/{MODEL}", f"/models/{MODEL}"
    canary = f"{models}/aliases/production/canary"
    shadow = f"{models}/aliases/production/shadow"
    b64 = {"b64": base64.b64encode(image).decode()}
    return [
        ("POST", "/predict", {"data": upload(image, image), "headers": {"X-Request-ID": "r-42"}}),
        ("POST", "/feedback", {"json": {"request_id": "r-42", "label": "Bag", "index": 1}}),
        ("GET", f"{models}/feedback", {}),
        ("GET", f"{models}/versions/3/monitoring", {}),
        ("GET", f"{models}/versions/1/monitoring", {}),  # nothing answered: nulls
        ("POST", f"{models}/predict?version=1", {"data": upload(image)}),
        ("POST", f"{models}/activations?version=1", {"data": upload(image)}),  # dense layers
        ("POST", f"{models}/activations", {"data": upload(image)}),  # feature maps
        ("POST", "/preprocess?format=json", {"data": upload(image, image)}),
        ("GET", "/models", {}),
        ("GET", models, {}),
        ("GET", f"{models}/versions/2", {}),
        ("PUT", f"{models}/aliases/staging", {"json": {"version": 1}, "headers": AUTH}),
        ("PUT", f"{models}/aliases/staging", {"json": {"version": 2}, "headers": AUTH}),
        ("DELETE", f"{models}/aliases/staging", {"headers": AUTH}),
        ("PUT", canary, {"json": {"version": 1, "weight": 10}, "headers": AUTH}),
        ("GET", models, {}),  # with a canary and the alias log
        ("DELETE", canary, {"headers": AUTH}),
        ("PUT", shadow, {"json": {"version": 2}, "headers": AUTH}),
        ("POST", "/predict", {"data": upload(image, image)}),  # copied to the shadow
        ("GET", models, {}),  # with a shadow
        ("GET", f"{models}/shadows", {}),
        ("DELETE", shadow, {"headers": AUTH}),
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/v2", {}),
        ("GET", "/v2/health/live", {}),
        ("GET", "/v2/health/ready", {}),
        ("GET", v2, {}),
        ("GET", f"{v2}/versions/1", {}),
        ("GET", f"{v2}/ready", {}),
        ("GET", f"{v2}/versions/1/ready", {}),
        ("POST", f"{v2}/infer", {"json": {"id": "r-1", "inputs": [tensor]}}),
        ("POST", f"{v2}/versions/1/infer", {"json": {"inputs": [tensor], "outputs": [top]}}),
        ("GET", v1, {}),
        ("GET", f"{v1}/versions/1", {}),
        ("GET", f"{v1}/labels/production", {}),
        ("POST", f"{v1}:predict", {"json": {"instances": [b64, b64]}}),
        ("POST", f"{v1}/versions/1:predict", {"json": {"instances": [pixels]}}),
        ("POST", f"{v1}/labels/production:predict", {"json": {"inputs": {"image": [pixels]}}}),
        # Refusals, in the house shape and in the protocols' own.
        ("POST", "/predict", {"data": b"not an image", "content_type": "image/png"}),
        ("GET", "/models/no-such-model", {}),
        ("POST", "/feedback", {"json": {"request_id": "r-unknown", "label": 0}}),
        ("DELETE", f"{models}/aliases/staging", {}),
        ("GET", "/v2/models/no-such-model", {}),
        ("POST", f"{v2}/infer", {"json": {"inputs": []}}),
        ("GET", f"{v1}/versions/9", {}),
    ]


def check_answer(app, document: dict, method: str, url: str, args: dict) -> tuple:
    """Send one request; its status is documented and its JSON matches the documented schema."""
    response = app.test_client().open(url, method=method, **args)
    rule, _ = app.url_map.bind("localhost").match(
        urlsplit(url).path, method=method, return_rule=True
    )
    path, status = openapi_path(rule.rule), str(response.status_code)
    where = f"{method} {url} → {status}"
    documented = document["paths"][path][method.lower()]["responses"]
    assert status in documented, where
    content = documented[status]["content"]
    assert response.mimetype in content, where
    schema = {**content[response.mimetype]["schema"], "components": document["components"]}
    errors = jsonschema_rs.Draft202012Validator(schema).iter_errors(response.get_json())
    assert [str(error) for error in errors] == [], where
    return path, method.lower(), status


def test_real_answers_match_the_documented_schemas(shipped):
    document = shipped.test_client().get("/openapi.json").get_json()
    answered = {check_answer(shipped, document, *exchange) for exchange in exchanges()}
    answering_json = {
        (path, method, "200")
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation["responses"]["200"].get("content", {})
    }
    assert answering_json <= answered  # every JSON answer was checked at least once


def test_a_judging_versions_answers_match_the_documented_schemas(app, judging, novelty_reference):
    document = app.test_client().get("/openapi.json").get_json()
    clothing, board = png(novelty_reference.clothing()), png(checkerboard())
    tensor = {"name": "image", "datatype": "FP32", "shape": [1, 28, 28]}
    tensor["data"] = (checkerboard() / 255).tolist()
    outputs = [{"name": name} for name in ("probabilities", "novelty", "in_distribution")]
    models = f"/models/{MODEL}"
    judged, asked = (
        {"inputs": [tensor], "outputs": outputs},
        {"inputs": [tensor], "outputs": outputs[1:]},
    )
    for exchange in [
        ("POST", f"{models}/predict?version={judging}", {"data": upload(clothing, board)}),
        ("POST", f"{models}/predict?version={judging}&unknown=reject", {"data": upload(board)}),
        ("POST", f"{models}/predict?unknown=reject", {"data": upload(board)}),  # no judgement
        ("POST", f"{models}/predict?unknown=maybe", {"data": upload(board)}),
        ("POST", f"/v2{models}/versions/{judging}/infer", {"json": judged}),
        ("POST", f"/v2{models}/infer", {"json": asked}),  # v1 does not judge: 400
    ]:  # fmt: skip
        check_answer(app, document, *exchange)


def test_the_judgement_is_documented(document):
    prediction = document["components"]["schemas"]["Prediction"]
    assert {"in_distribution", "novelty"} <= set(prediction["required"])
    for path in ("/predict", "/models/{name}/predict"):
        operation = document["paths"][path]["post"]
        (unknown,) = [p for p in operation["parameters"] if p["name"] == "unknown"]
        assert unknown["schema"]["enum"] == ["flag", "reject"]
        assert "not_clothing" in unknown["description"]
        assert "422" in operation["responses"]
    output = document["components"]["schemas"]["InferOutput"]["properties"]["name"]
    assert re.fullmatch(output["pattern"], "in_distribution")
    assert re.fullmatch(output["pattern"], "novelty")
