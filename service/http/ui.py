"""The page for people at /: classify pictures, look inside the network, manage versions."""

from flask import Blueprint, Response, render_template

from . import current, spec

bp = Blueprint(
    "ui",
    __name__,
    static_folder="static/ui",
    static_url_path="/ui",
    template_folder="templates",
)


@bp.get("/")
def page() -> Response:
    """The single page; its script reads everything else from the JSON API."""
    html = render_template("ui/index.html", default_model=current.settings().default_model)
    return Response(html, content_type="text/html; charset=utf-8")


PATHS: spec.Paths = {
    "/": {
        "get": {
            "tags": ["page"],
            "summary": "The page for people: classify pictures, inside the network, models.",
            "responses": {"200": spec.ok("The page.", spec.STRING, "text/html")},
        }
    },
    "/ui/{filename}": {
        "get": {
            "tags": ["page"],
            "summary": "The page's script, style and gallery images.",
            "parameters": [spec.path_parameter("filename", "Asset file.", spec.STRING, "page.js")],
            "responses": {"200": spec.ASSET, **spec.errors(404)},
        }
    },
}
