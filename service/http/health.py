"""Liveness and readiness probes."""

from flask import Blueprint, Response, jsonify

from . import spec
from .current import core
from .responses import Health, Ready

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers: nothing more is promised."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 once the default model is loaded; 503 with the reasons otherwise."""
    status = core().status()
    return jsonify(status), 200 if status["ready"] else 503


PATHS: spec.Paths = {
    "/healthz": {
        "get": {
            "tags": ["health"],
            "summary": "Liveness: the process answers.",
            "responses": {"200": spec.ok("Alive.", spec.ref(Health))},
        }
    },
    "/readyz": {
        "get": {
            "tags": ["health"],
            "summary": "Readiness: 200 once the default alias answers (even degraded), 503 before.",
            "responses": {
                "200": spec.ok(
                    "Ready; what this worker serves, has loaded and refused.", spec.ref(Ready)
                ),
                "503": spec.ok("Not ready, with the reasons.", spec.ref(Ready)),
            },
        }
    },
}
