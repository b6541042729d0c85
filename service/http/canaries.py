"""Canaries over HTTP: send a share of an alias's traffic to a second version, or end that."""

from flask import Blueprint, Response, jsonify

from service.contract import is_version
from service.errors import BadRequest

from . import spec
from .current import registry_view
from .models import admin_body, require_admin
from .responses import CanaryChange
from .wire import CanaryRequest

bp = Blueprint("canaries", __name__, url_prefix="/models")


@bp.put("/<name>/aliases/<alias>/canary")
def set_canary(name: str, alias: str) -> Response:
    """Body {"version": N, "weight": W}: W % of the alias's traffic to N. Needs the admin token."""
    require_admin()
    body = admin_body()
    version, weight = body.get("version"), body.get("weight")
    if not is_version(version) or isinstance(weight, bool) or not isinstance(weight, int | float):
        raise BadRequest(
            'send a JSON body {"version": N, "weight": W}: N a version, W a whole percent 1..99'
        )
    # The registry checks the weight's range (service/registry/_canary.py), for the CLI too.
    return jsonify(registry_view().set_canary(name, alias, version, weight))  # type: ignore[arg-type]


@bp.delete("/<name>/aliases/<alias>/canary")
def clear_canary(name: str, alias: str) -> Response:
    """End the alias's canary: all its traffic to its target. Needs the admin token."""
    require_admin()
    return jsonify(registry_view().clear_canary(name, alias, "ended over the admin API"))


_ADMIN = {"tags": ["models"], "parameters": [spec.NAME, spec.ALIAS], "security": [{"bearer": []}]}

PATHS: spec.Paths = {
    "/models/{name}/aliases/{alias}/canary": {
        "put": {
            **_ADMIN,
            "summary": "Send a share of an alias's traffic to a second version (admin token).",
            "description": "Verified and loaded like a promotion; recorded in the alias log. "
            "Requests with one X-Request-Key always get the same version.",
            "requestBody": {
                "required": True,
                "content": spec.json_content(spec.ref(CanaryRequest)),
            },
            "responses": {
                "200": spec.ok("The canary set.", spec.ref(CanaryChange)),
                **spec.errors(400, 401, 403, 404, 503),
            },
        },
        "delete": {
            **_ADMIN,
            "summary": "End an alias's canary: all its traffic to its target (admin token).",
            "responses": {
                "200": spec.ok(
                    "The canary ended (previous: null when there was none).",
                    spec.ref(CanaryChange),
                ),
                **spec.errors(400, 401, 403, 404, 503),
            },
        },
    }
}
