"""POST /feedback (the true class of an answered image) and GET /models/<name>/feedback."""

import hmac
import math
import threading
import time
from collections import OrderedDict

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from service.contract import validate_name
from service.errors import BadRequest

from . import spec
from .access_log import VALID_ID
from .current import EXTENSION as CORE_EXTENSION
from .current import core, registry_view, settings
from .error_map import HttpError
from .metrics import EXTENSION as METRICS_EXTENSION
from .metrics import Metrics
from .models import admin_body
from .responses import FeedbackAnswer, FeedbackSummary
from .wire import FeedbackRequest

bp = Blueprint("feedback", __name__)
LIMITER = "fashion_serve.feedback_limiter"
CLIENTS = 10_000  # clients the rate limiter remembers: bounded however many addresses call


class RateLimiter:
    """A token bucket per client address: `rate` a second, bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self.rate, self.burst = rate, max(1.0, 2 * rate)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """0 if the client may go on (a token is taken), else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            if len(self._buckets) > CLIENTS:
                self._buckets.popitem(last=False)
        return wait


def _check_token() -> None:
    token = settings().feedback_token
    if token is None:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HttpError(
            401,
            "unauthorized",
            "feedback needs 'Authorization: Bearer <token>' (FASHION_FEEDBACK_TOKEN)",
            {"WWW-Authenticate": 'Bearer realm="fashion-serve feedback"'},
        )


@bp.post("/feedback")
def give_feedback() -> Response:
    """Body {"request_id", "label", "index"?}: the true class of an image answered before."""
    _check_token()
    limiter: RateLimiter = current_app.extensions[LIMITER]
    wait = limiter.wait(request.remote_addr or "unknown")
    if wait:
        raise HttpError(
            429, "rate_limited", "too much feedback from this client; slow down",
            {"Retry-After": str(math.ceil(wait))},
        )  # fmt: skip
    body = admin_body()
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not VALID_ID.fullmatch(request_id):
        raise BadRequest(
            'send a JSON body {"request_id": the X-Request-ID of a /predict answer, '
            '"label": a class name or index, "index": which image (default 0)}'
        )
    if "label" not in body:
        raise BadRequest('"label" is missing: the true class, by name or index')
    return jsonify(core().feedback.give(request_id, body["label"], body.get("index", 0)))


@bp.get("/models/<name>/feedback")
def feedback_summary(name: str) -> Response:
    """Live accuracy per version, from the feedback of the last week."""
    name = validate_name(name)
    registry_view().versions(name)  # an unknown model is a 404
    return jsonify(core().feedback.summary(name))


def init_app(app: Flask) -> None:
    """The rate limiter, and the live-accuracy gauges set from the journal before a scrape."""
    found = app.extensions[CORE_EXTENSION]
    app.extensions[LIMITER] = RateLimiter(found.settings.feedback_rate)
    metrics: Metrics | None = app.extensions.get(METRICS_EXTENSION)
    if metrics is None:
        return
    accuracy, count = metrics.version_gauges(
        ("fashion_live_accuracy",
         "Share of feedback (last week) where the version's answer was the true class."),
        ("fashion_feedback_received", "Feedback (last week) joined to each version's answers."),
    )  # fmt: skip

    def update() -> None:
        for (model, version), matrix in found.feedback.tally.matrices().items():
            total = sum(map(sum, matrix))
            count.labels(model, str(version)).set(total)
            if total:
                right = sum(matrix[c][c] for c in range(len(matrix)))
                accuracy.labels(model, str(version)).set(right / total)

    metrics.before_scrape.append(update)


PATHS: spec.Paths = {
    "/feedback": {
        "post": {
            "tags": ["feedback"],
            "security": [{}, {"bearer": []}],
            "summary": "Report the true class of an image a /predict request was answered for.",
            "description": "Joined to the version and class that answered (any worker or "
            "replica, within FASHION_PREDICTION_TTL); rate-limited per client; a bearer token "
            "when FASHION_FEEDBACK_TOKEN is set.",
            "requestBody": {
                "required": True,
                "content": spec.json_content(spec.ref(FeedbackRequest)),
            },
            "responses": {
                "200": spec.ok("The feedback recorded.", spec.ref(FeedbackAnswer)),
                **spec.errors(400, 401, 404, 429, 503),
            },
        }
    },
    "/models/{name}/feedback": {
        "get": {
            "tags": ["feedback"],
            "summary": "Live accuracy per version, from the last week's feedback.",
            "parameters": [spec.NAME],
            "responses": {
                "200": spec.ok("Feedback per version.", spec.ref(FeedbackSummary)),
                **spec.errors(400, 404, 503),
            },
        }
    },
}
