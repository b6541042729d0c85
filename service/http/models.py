"""Model registry over HTTP: list models, versions and cards; promote and roll back aliases."""

import hmac

from flask import Blueprint, Response, jsonify, request, send_file

from service.contract import is_version, parse_version
from service.errors import BadRequest
from service.registry_view import PUBLIC_FILES

from . import spec
from .body import load_json, read_body
from .current import registry_view, settings
from .error_map import HttpError
from .responses import AliasChange, ModelDetail, ModelList, VersionCard
from .wire import AliasRequest

bp = Blueprint("models", __name__, url_prefix="/models")


@bp.get("")
def list_models() -> Response:
    """Every model in the registry with its versions and aliases."""
    return jsonify(models=registry_view().list_models())


@bp.get("/<name>")
def show_model(name: str) -> Response:
    """One model: its versions (with headline metrics), aliases and alias history."""
    return jsonify(registry_view().describe_model(name))


@bp.get("/<name>/versions/<version>")
def show_version(name: str, version: str) -> Response:
    """A version's card, plus whether this worker has it loaded and on which providers."""
    return jsonify(registry_view().version_card(name, parse_version(version)))


@bp.get("/<name>/versions/<version>/files/<filename>")
def version_file(name: str, version: str, filename: str) -> Response:
    """One of a version's stored plots (training curves, confusion matrix, reliability)."""
    path = registry_view().version_file(name, parse_version(version), filename)
    # Versions are immutable: a client may keep the file as long as it likes.
    return send_file(path, max_age=86400, conditional=True)


def require_admin() -> None:
    token = settings().admin_token
    if token is None:
        raise HttpError(
            403, "read_only", "model management is disabled: set FASHION_ADMIN_TOKEN to enable it"
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant-time comparison: response timing must not reveal how much of the token matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HttpError(
            401,
            "unauthorized",
            "a valid 'Authorization: Bearer <token>' header is required",
            {"WWW-Authenticate": 'Bearer realm="fashion-serve"'},
        )


@bp.put("/<name>/aliases/<alias>")
def promote(name: str, alias: str) -> Response:
    """Point an alias at a version: body {"version": N}. Needs the admin token."""
    require_admin()
    body = admin_body()
    version = body.get("version")
    if isinstance(version, float) and version.is_integer():  # 2.0 is JSON's integer 2 too
        version = int(version)
    if not is_version(version):
        raise BadRequest('send a JSON body {"version": N} with N a positive integer')
    return jsonify(registry_view().set_alias(name, alias, version))


def admin_body() -> dict[str, object]:
    """An admin request's JSON object ({} for anything else: the caller names what it needs)."""
    try:
        body = load_json(read_body(settings(), json_prefix=-1))
    except BadRequest:
        return {}
    return body if isinstance(body, dict) else {}


@bp.delete("/<name>/aliases/<alias>")
def rollback(name: str, alias: str) -> Response:
    """Move an alias back to the version it pointed at before. Needs the admin token."""
    require_admin()
    return jsonify(registry_view().rollback(name, alias))


_ADMIN = {"tags": ["models"], "parameters": [spec.NAME, spec.ALIAS], "security": [{"bearer": []}]}
_FILENAME = spec.path_parameter(
    "filename",
    "One of the files a version may serve.",
    {"type": "string", "enum": list(PUBLIC_FILES)},
    "training.png",
)

PATHS: spec.Paths = {
    "/models": {
        "get": {
            "tags": ["models"],
            "summary": "Every model with its versions and aliases.",
            "responses": {
                "200": spec.ok("The registry's models.", spec.ref(ModelList)),
                **spec.errors(503),
            },
        }
    },
    "/models/{name}": {
        "get": {
            "tags": ["models"],
            "summary": "A model's versions (with test accuracy), aliases and alias history.",
            "parameters": [spec.NAME],
            "responses": {
                "200": spec.ok("The model.", spec.ref(ModelDetail)),
                **spec.errors(400, 404, 503),
            },
        }
    },
    "/models/{name}/versions/{version}": {
        "get": {
            "tags": ["models"],
            "summary": "A version's card, and whether this worker serves it and on what.",
            "parameters": [spec.NAME, spec.VERSION],
            "responses": {
                "200": spec.ok(
                    "The version card (model.json) plus `serving`.", spec.ref(VersionCard)
                ),
                **spec.errors(400, 404, 503),
            },
        }
    },
    "/models/{name}/versions/{version}/files/{filename}": {
        "get": {
            "tags": ["models"],
            "summary": "A stored plot of a version: training, confusion or reliability diagram.",
            "parameters": [spec.NAME, spec.VERSION, _FILENAME],
            "responses": {
                "200": spec.ok("The file (immutable, like the version).", spec.BINARY, "image/png"),
                **spec.errors(400, 404, 503),
            },
        }
    },
    "/models/{name}/aliases/{alias}": {
        "put": {
            **_ADMIN,
            "summary": "Point an alias at a version (admin token required).",
            "requestBody": {"required": True, "content": spec.json_content(spec.ref(AliasRequest))},
            "responses": {
                "200": spec.ok("The alias moved.", spec.ref(AliasChange)),
                **spec.errors(400, 401, 403, 404, 503),
            },
        },
        "delete": {
            **_ADMIN,
            "summary": "Move an alias back to its previous version (admin token required).",
            "responses": {
                "200": spec.ok("The alias moved back.", spec.ref(AliasChange)),
                **spec.errors(400, 401, 403, 404, 409, 503),
            },
        },
    },
}
