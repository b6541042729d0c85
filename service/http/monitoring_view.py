"""GET /models/<name>/versions/<v>/monitoring, and the drift gauges set before a scrape."""

from typing import Any

from flask import Blueprint, Flask, Response, jsonify

from service.contract import parse_version
from service.errors import FashionServeError

from . import spec
from .current import EXTENSION as CORE_EXTENSION
from .current import core
from .metrics import EXTENSION as METRICS_EXTENSION
from .metrics import Metrics
from .responses import Monitoring

bp = Blueprint("monitoring", __name__)


@bp.get("/models/<name>/versions/<version>/monitoring")
def monitoring(name: str, version: str) -> Response:
    """Live class distribution and confidence vs the test set (PSI), the out-of-distribution
    share, and live accuracy."""
    return jsonify(core().monitoring(name, parse_version(version)))


def init_app(app: Flask) -> None:
    """Drift gauges per version, read from the shared predictions journal before a scrape."""
    metrics: Metrics | None = app.extensions.get(METRICS_EXTENSION)
    if metrics is None:
        return
    found = app.extensions[CORE_EXTENSION]
    drift, confidence, unknown = metrics.version_gauges(
        ("fashion_drift_psi",
         "Population stability index of the live answers' classes against the test set's."),
        ("fashion_live_mean_confidence", "Mean confidence of the live answers."),
        ("fashion_live_ood_share",
         "Share of the live answers a judging version flagged out of distribution."),
    )  # fmt: skip

    def update() -> None:
        for model, version in found.live_answers.snapshot():
            try:
                shown: dict[str, Any] = found.monitoring(model, version)
            except FashionServeError:  # a version deleted by hand: nothing to compare with
                continue
            if shown["psi"] is not None:
                drift.labels(model, str(version)).set(shown["psi"])
            if shown["mean_confidence"] is not None:
                confidence.labels(model, str(version)).set(shown["mean_confidence"])
            if shown["out_of_distribution"]["live_share"] is not None:
                unknown.labels(model, str(version)).set(shown["out_of_distribution"]["live_share"])

    metrics.before_scrape.append(update)


PATHS: spec.Paths = {
    "/models/{name}/versions/{version}/monitoring": {
        "get": {
            "tags": ["feedback"],
            "summary": "A version's live answers against its test set (PSI), and live accuracy.",
            "description": "Live: the answers of every worker and replica within "
            "FASHION_PREDICTION_TTL; live accuracy: the last week's feedback.",
            "parameters": [spec.NAME, spec.VERSION],
            "responses": {
                "200": spec.ok("The version's monitoring.", spec.ref(Monitoring)),
                **spec.errors(400, 404, 503),
            },
        }
    }
}
