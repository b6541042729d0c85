"""Liveness and readiness probes."""

from flask import Blueprint, Response, jsonify

from .parsing import core

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
