"""/openapi.json and the docs page: Swagger UI from the flask-swagger-ui package, no CDN."""

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask, Response, current_app, send_from_directory, url_for

from . import spec
from .json_provider import encode

bp = Blueprint("docs", __name__)
EXTENSION = "fashion_serve.openapi"

# Swagger UI 5 (it renders OpenAPI 3.1) as the package ships it; only its files are used here.
ASSETS = Path(flask_swagger_ui.__file__).parent / "dist"

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>fashion-serve API</title>
  <link rel="stylesheet" href="{css}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{js}"></script>
  <script>SwaggerUIBundle({{url: "{spec}", dom_id: "#swagger-ui", deepLinking: true}});</script>
</body>
</html>
"""


def init_app(app: Flask, document: spec.Schema) -> None:
    """Serve this document at /openapi.json, encoded once."""
    app.extensions[EXTENSION] = encode(document)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 description of every endpoint."""
    return Response(current_app.extensions[EXTENSION], content_type="application/json")


@bp.get("/docs")
def docs_page() -> Response:
    """Swagger UI over /openapi.json."""
    page = _PAGE.format(
        css=url_for("docs.asset", filename="swagger-ui.css"),
        js=url_for("docs.asset", filename="swagger-ui-bundle.js"),
        spec=url_for("docs.openapi_document"),
    )
    return Response(page, content_type="text/html; charset=utf-8")


@bp.get("/docs/<path:filename>")
def asset(filename: str) -> Response:
    """Swagger UI's files, from the installed package (send_from_directory refuses ../ paths)."""
    return send_from_directory(ASSETS, filename, max_age=3600)


PATHS: spec.Paths = {
    "/openapi.json": {
        "get": {
            "tags": ["operations"],
            "summary": "This document.",
            "responses": {"200": spec.ok("OpenAPI 3.1.", {"type": "object"})},
        }
    },
    "/docs": {
        "get": {
            "tags": ["operations"],
            "summary": "Interactive documentation of this API (Swagger UI, served locally).",
            "responses": {"200": spec.ok("The docs page.", spec.STRING, "text/html")},
        }
    },
    "/docs/{filename}": {
        "get": {
            "tags": ["operations"],
            "summary": "The docs page's scripts and styles.",
            "parameters": [
                spec.path_parameter("filename", "Asset file.", spec.STRING, "swagger-ui-bundle.js")
            ],
            "responses": {"200": spec.ASSET, **spec.errors(404)},
        }
    },
}
