"""/openapi.json and the docs page: Swagger UI from the flask-swagger-ui package, no CDN."""

import json
from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Response, send_from_directory, url_for

from .openapi import DOCUMENT

bp = Blueprint("docs", __name__)

# Swagger UI 5 (it renders OpenAPI 3.1) as the package ships it; only its files are used here.
ASSETS = Path(flask_swagger_ui.__file__).parent / "dist"

_DOCUMENT_JSON = json.dumps(DOCUMENT, ensure_ascii=False)
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


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 description of every endpoint."""
    return Response(_DOCUMENT_JSON, content_type="application/json")


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
