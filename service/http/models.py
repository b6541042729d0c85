"""Model registry over HTTP: list models, versions and cards; promote and roll back aliases."""

import hmac

from flask import Blueprint, Response, jsonify, request

from service.contract import is_version, parse_version
from service.errors import BadRequest

from .body import load_json, read_body
from .errors import HttpError
from .parsing import core

bp = Blueprint("models", __name__, url_prefix="/models")


@bp.get("")
def list_models() -> Response:
    """Every model in the registry with its versions and aliases."""
    return jsonify(models=core().list_models())


@bp.get("/<name>")
def show_model(name: str) -> Response:
    """One model: its versions (with headline metrics), aliases and alias history."""
    return jsonify(core().describe_model(name))


@bp.get("/<name>/versions/<version>")
def show_version(name: str, version: str) -> Response:
    """A version's card, plus whether this worker has it loaded and on which providers."""
    return jsonify(core().version_card(name, parse_version(version)))


def _require_admin() -> None:
    token = core().settings.admin_token
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
    _require_admin()
    try:
        body = load_json(read_body(core().settings, json_prefix=-1))
    except BadRequest:
        body = None
    version = body.get("version") if isinstance(body, dict) else None
    if isinstance(version, float) and version.is_integer():  # 2.0 is JSON's integer 2 too
        version = int(version)
    if not is_version(version):
        raise BadRequest('send a JSON body {"version": N} with N a positive integer')
    return jsonify(core().set_alias(name, alias, version))


@bp.delete("/<name>/aliases/<alias>")
def rollback(name: str, alias: str) -> Response:
    """Move an alias back to the version it pointed at before. Needs the admin token."""
    _require_admin()
    return jsonify(core().rollback(name, alias))
