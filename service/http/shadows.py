"""Shadows over HTTP: let a version answer a copy of an alias's requests, stop it, compare it.

The counters here are this worker's (summed over workers by /metrics); GET /models/<n>/shadows
reads the shared journal, so it shows every worker's and replica's comparisons.
"""

from flask import Blueprint, Flask, Response, jsonify
from prometheus_client import Counter

from service.contract import CLASS_NAMES, is_version
from service.errors import BadRequest
from service.shadow import STEP_IMAGES, Comparison

from . import spec
from .current import EXTENSION as CORE_EXTENSION
from .current import core
from .metrics import EXTENSION as METRICS_EXTENSION
from .metrics import Metrics
from .models import admin_body, require_admin
from .responses import ShadowChange, ShadowSummary
from .wire import AliasRequest

bp = Blueprint("shadows", __name__, url_prefix="/models")


@bp.put("/<name>/aliases/<alias>/shadow")
def set_shadow(name: str, alias: str) -> Response:
    """Body {"version": N}: N answers a copy of the alias's requests. Needs the admin token."""
    require_admin()
    version = admin_body().get("version")
    if isinstance(version, float) and version.is_integer():  # 2.0 is JSON's integer 2 too
        version = int(version)
    if not is_version(version):
        raise BadRequest('send a JSON body {"version": N} with N a positive integer')
    return jsonify(core().shadows.set(name, alias, version))


@bp.delete("/<name>/aliases/<alias>/shadow")
def clear_shadow(name: str, alias: str) -> Response:
    """Stop the alias's shadow. Needs the admin token."""
    require_admin()
    return jsonify(core().shadows.clear(name, alias, "stopped over the admin API"))


@bp.get("/<name>/shadows")
def shadow_summary(name: str) -> Response:
    """The model's shadows and how often they agreed with the served answers."""
    return jsonify(core().shadow_summary(name))


class ShadowMetrics:
    """Comparisons, disagreements per class pair, batches dropped and failures, per shadow
    version."""

    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.predictions = Counter(
            "fashion_shadow_predictions",
            "Images a shadow version answered beside the version that served them.",
            ("model", "alias", "version", "served_version"),
            registry=registry,
        )
        self.disagreements = Counter(
            "fashion_shadow_disagreements",
            "Images whose shadow class differed from the class served, by both classes.",
            ("model", "version", "served_class", "shadow_class"),
            registry=registry,
        )
        self.dropped = Counter(
            "fashion_shadow_dropped",
            f"Served batches (or a copy of up to {STEP_IMAGES} images of one) the shadow did not "
            "compare: its queue was full or its CPU budget spent.",
            ("model", "alias", "version"),
            registry=registry,
        )

        self.failures = Counter(
            "fashion_shadow_failures",
            "Copies the shadow version raised on (logged once, then once a minute).",
            ("model", "alias", "version"),
            registry=registry,
        )

    def on_compared(self, comparison: Comparison) -> None:
        name, version = comparison.name, str(comparison.shadow)
        served, shadow = comparison.served_classes, comparison.shadow_classes
        self.predictions.labels(name, comparison.alias, version, str(comparison.served)).inc(
            len(served)
        )
        for one, other in zip(served, shadow, strict=True):
            if one != other:
                labels = (name, version, CLASS_NAMES[one], CLASS_NAMES[other])
                self.disagreements.labels(*labels).inc()

    def on_dropped(self, name: str, alias: str, shadow: int) -> None:
        self.dropped.labels(name, alias, str(shadow)).inc()

    def on_failed(self, name: str, alias: str, shadow: int) -> None:
        self.failures.labels(name, alias, str(shadow)).inc()


def init_app(app: Flask) -> None:
    """The shadow counters join the app's metrics (none without metrics)."""
    metrics: Metrics | None = app.extensions.get(METRICS_EXTENSION)
    if metrics is not None:
        app.extensions[CORE_EXTENSION].shadows.observers.append(ShadowMetrics(metrics))


_ADMIN = {"tags": ["models"], "parameters": [spec.NAME, spec.ALIAS], "security": [{"bearer": []}]}

PATHS: spec.Paths = {
    "/models/{name}/aliases/{alias}/shadow": {
        "put": {
            **_ADMIN,
            "summary": "Let a version answer a copy of an alias's requests (admin token).",
            "description": "Verified and loaded like a promotion; recorded in the alias log. "
            "The copy is answered off the request path (a bounded queue: dropped, never "
            "waited for), never changes an answer, and is compared with the served one.",
            "requestBody": {
                "required": True,
                "content": spec.json_content(spec.ref(AliasRequest)),
            },
            "responses": {
                "200": spec.ok("The shadow set.", spec.ref(ShadowChange)),
                **spec.errors(400, 401, 403, 404, 503),
            },
        },
        "delete": {
            **_ADMIN,
            "summary": "Stop an alias's shadow (admin token).",
            "responses": {
                "200": spec.ok(
                    "The shadow stopped (previous: null when there was none).",
                    spec.ref(ShadowChange),
                ),
                **spec.errors(400, 401, 403, 404, 503),
            },
        },
    },
    "/models/{name}/shadows": {
        "get": {
            "tags": ["feedback"],
            "summary": "A model's shadows and their agreement with the served answers.",
            "description": "From every worker and replica, within FASHION_PREDICTION_TTL.",
            "parameters": [spec.NAME],
            "responses": {
                "200": spec.ok("Shadows and comparisons.", spec.ref(ShadowSummary)),
                **spec.errors(400, 404, 503),
            },
        }
    },
}
