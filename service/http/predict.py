"""POST /predict and /models/<name>/predict: images in, ten labelled probabilities out."""

import time
from typing import Any

from flask import Blueprint, Response, request

from service.data_plane import Result
from service.loader import LoadedModel

from . import spec
from .current import core, data_plane
from .json_provider import encode as json_body
from .query import model_query, rejects_unknown
from .responses import PredictResponse
from .uploads import uploaded_images

bp = Blueprint("predict", __name__)
MODEL_VERSION_HEADER = "X-Model-Version"
REQUEST_ID_KEY = "fashion_serve.request_id"  # set by access_log, which imports this module
# The client's key for canary routing: one key is always answered by the same version.
REQUEST_KEY_HEADER = "X-Request-Key"
REQUEST_KEY = {
    "name": REQUEST_KEY_HEADER,
    "in": "header",
    "required": False,
    "description": "Sticky canary routing: requests with one key are answered by one version"
    " (by every worker and replica); without it, a canary's share is drawn at random.",
    "schema": {"type": "string", "maxLength": 256},
}


def result_body(result: Result) -> dict[str, Any]:
    """The response shape shared by every image endpoint."""
    return {
        "model": {
            "name": result.model.name,
            "version": result.model.version,
            "alias": result.alias,
        },
        "predictions": result.predictions(),
    }


def encode(result: Result) -> bytes:
    """The response body's bytes."""
    return json_body(result_body(result))


def with_model_version(response: Response, model: LoadedModel) -> Response:
    """Name the version that answered ("name:version"), for clients and the access log."""
    response.headers[MODEL_VERSION_HEADER] = f"{model.name}:{model.version}"
    return response


def remember(result: Result, started: float) -> None:
    """Remember the answer under the request's ID, for POST /feedback and rollouts, and offer
    it to payload capture (opt-in: FASHION_CAPTURE_RATE), which is joined to feedback by that
    ID. Every protocol calls it, so feedback and capture work whichever served; started:
    perf_counter before classifying. Nothing outside the access log's wrapper (no ID)."""
    request_id: str | None = request.environ.get(REQUEST_ID_KEY)
    if request_id is not None:
        core().feedback.remember(request_id, result, time.perf_counter() - started)
        core().capture.sample(request_id, result)


def _predict(name: str | None) -> Response:
    query = model_query()
    reject = rejects_unknown()
    key = request.headers.get(REQUEST_KEY_HEADER)
    started = time.perf_counter()
    result = data_plane().predict_images(
        uploaded_images(), name=name, key=key, reject_unknown=reject, **query
    )
    remember(result, started)
    response = Response(encode(result), mimetype="application/json")
    return with_model_version(response, result.model)


@bp.post("/predict")
def predict_default() -> Response:
    """Classify with the default model (its default alias unless ?version= or ?alias=)."""
    return _predict(None)


@bp.post("/models/<name>/predict")
def predict_model(name: str) -> Response:
    """Classify with a named model."""
    return _predict(name)


def operation(
    summary: str,
    parameters: list[spec.Schema],
    answer: type = PredictResponse,
    description: str = "All ten class probabilities per image.",
) -> spec.Schema:
    """An image endpoint's operation: images in, the answer's JSON out (activations' too)."""
    return {
        "tags": ["predict"],
        "summary": summary,
        "parameters": [*parameters, *spec.MODEL_QUERY, *spec.IMAGE_QUERY],
        "requestBody": spec.IMAGES_BODY,
        "responses": {
            "200": {**spec.ok(description, spec.ref(answer)), "headers": spec.MODEL_VERSION},
            **spec.errors(400, 404, 413, 415, 422, 503),
        },
    }


PATHS: spec.Paths = {
    "/predict": {
        "post": operation(
            "Classify images with the default model.", [*spec.UNKNOWN_QUERY, REQUEST_KEY]
        )
    },
    "/models/{name}/predict": {
        "post": operation(
            "Classify images with a model.", [spec.NAME, *spec.UNKNOWN_QUERY, REQUEST_KEY]
        )
    },
}
