"""TensorFlow Serving's REST API under /v1/models: predict (row and columnar forms) and status.

Errors are {"error": "message"} as TF Serving writes them (service/http/errors.py).
"""

import base64
import binascii
import time
from typing import Any

import numpy as np
from flask import Blueprint, Response, jsonify
from flask.blueprints import BlueprintSetupState
from msgspec import UNSET
from werkzeug.routing import BaseConverter

from service.contract import INPUT_NAME, parse_version
from service.errors import BadRequest

from . import spec
from .body import read_body
from .current import data_plane, settings
from .predict import remember, with_model_version
from .responses import TfModelStatus, TfPredictResponse
from .tensors import array_from_json, to_images
from .wire import TfPredictRequest, decode

bp = Blueprint("tfserving", __name__, url_prefix="/v1/models")


class SegmentConverter(BaseConverter):
    """A path segment without ':', so the status routes never claim a '...:predict' URL."""

    regex = "[^/:]+"


def _add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("segment", SegmentConverter)


# Before the routes below: a blueprint applies its deferred setup in the order it was recorded.
bp.record_once(_add_converter)

# Encoded images (every entry {"b64": ...}) or pixels as float32 [N,28,28].
Images = list[bytes] | np.ndarray


@bp.get("/<segment:name>")
@bp.get("/<segment:name>/versions/<segment:version>")
@bp.get("/<segment:name>/labels/<segment:alias>")
def model_status(name: str, version: str | None = None, alias: str | None = None) -> Response:
    """The version that answers (loading it if needed), in TF Serving's model status shape."""
    loaded, _ = data_plane().model(name, parse_version(version), alias)
    return jsonify(
        model_version_status=[
            {
                "version": str(loaded.version),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    )


@bp.post("/<name>:predict")
@bp.post("/<name>/versions/<version>:predict")
@bp.post("/<name>/labels/<alias>:predict")
def predict(name: str, version: str | None = None, alias: str | None = None) -> Response:
    """{"instances": [...]} → {"predictions": [...]}, or {"inputs": ...} → {"outputs": [...]}."""
    number = parse_version(version)
    body = decode(TfPredictRequest, read_body(settings(), json_prefix=-1), "request body")
    if (body.instances is UNSET) == (body.inputs is UNSET):
        raise BadRequest('give exactly one of "instances" (rows) or "inputs" (columns)')
    if body.instances is not UNSET:
        key, images = "predictions", _rows(body.instances)
    else:
        key, images = "outputs", _columns(body.inputs)
    service = data_plane()
    started = time.perf_counter()
    if isinstance(images, list):
        result = service.predict_images(images, name, number, alias)
    else:
        result = service.predict_array(images, name, number, alias)
    remember(result, started)
    return with_model_version(jsonify({key: result.probabilities.tolist()}), result.model)


def _rows(instances: list[Any]) -> Images:
    """Each instance is a 28×28 array, {"b64": encoded image}, or {"image": either of those}."""
    return _images([_named(instance) for instance in instances])


def _columns(inputs: object) -> Images:
    """The whole batch at once: [N,28,28] (or a list of {"b64"}), bare or as {"image": ...}."""
    batch = _named(inputs)
    if not isinstance(batch, list) or not batch:
        raise BadRequest('"inputs" must hold a non-empty list of images')
    return _images(batch)


def _named(value: object) -> object:
    """Unwrap {"image": x} (the input named as in the signature); leave others as they are."""
    if isinstance(value, dict) and "b64" not in value:
        if set(value) != {INPUT_NAME}:
            raise BadRequest(f"unknown input names {sorted(value)[:5]}: the model takes 'image'")
        return value[INPUT_NAME]
    return value


def _images(values: list[Any]) -> Images:
    """Encoded images (list of bytes) when every entry is {"b64"}; else a float32 [N,28,28]."""
    encoded = [isinstance(value, dict) for value in values]
    if all(encoded):
        return [_decode_b64(value) for value in values]
    if any(encoded):
        raise BadRequest('mix of {"b64": ...} images and pixel arrays in one request')
    return to_images(array_from_json(values, "FP32", "pixel values"), "FP32")


def _decode_b64(value: dict[str, Any]) -> bytes:
    if set(value) != {"b64"}:
        raise BadRequest(
            'an encoded image is {"b64": "<base64>"}, not an object with keys '
            f"{sorted(value)[:5]}"
        )
    data = value["b64"]
    if not isinstance(data, str):
        raise BadRequest('"b64" must be a base64 string')
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest('"b64" is not valid base64') from None


# -- the OpenAPI paths -------------------------------------------------------------------------

_TAG = "tensorflow serving (v1)"


def _status(parameters: list[spec.Schema]) -> spec.Schema:
    ok = {"200": spec.ok("Model version status.", spec.ref(TfModelStatus))}
    summary = "The version that answers, in TF Serving's model status shape."
    return {"get": spec.operation(_TAG, summary, parameters, ok, (400, 404, 503), plain=True)}


def _predict(parameters: list[spec.Schema]) -> spec.Schema:
    ok = {
        "200": spec.ok(
            "predictions (for instances) or outputs (for inputs): ten probabilities each.",
            spec.ref(TfPredictResponse),
        )
    }
    return {
        "post": spec.operation(
            _TAG,
            "Classify 28×28 arrays (0..1) or base64 images: rows or columns.",
            parameters,
            ok,
            (400, 404, 413, 415, 422, 503),
            plain=True,
            requestBody={
                "required": True,
                "content": spec.json_content(spec.ref(TfPredictRequest)),
            },
        )
    }


_MODEL = "/v1/models/{name}"
_VERSION = f"{_MODEL}/versions/{{version}}"
_LABEL = f"{_MODEL}/labels/{{alias}}"

PATHS: spec.Paths = {
    _MODEL: _status([spec.NAME]),
    _VERSION: _status([spec.NAME, spec.VERSION]),
    _LABEL: _status([spec.NAME, spec.ALIAS]),
    f"{_MODEL}:predict": _predict([spec.NAME]),
    f"{_VERSION}:predict": _predict([spec.NAME, spec.VERSION]),
    f"{_LABEL}:predict": _predict([spec.NAME, spec.ALIAS]),
}
