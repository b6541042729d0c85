"""The Open Inference Protocol (KServe v2) under /v2, with Triton's binary tensor data extension.

Tools written for Triton, KServe or Seldon MLServer (e.g. tritonclient.http with its defaults)
talk to this service unchanged. Errors are {"error": "message"} (service/http/errors.py).
"""

import math
import time
from typing import Any

import numpy as np
from flask import Blueprint, Response, jsonify, request

from service import __version__
from service.contract import (
    CLASS_NAMES,
    IMAGE_SIDE,
    INPUT_NAME,
    NOVELTY_NAME,
    OUTPUT_NAME,
    parse_version,
)
from service.data_plane import Result
from service.errors import BadRequest
from service.novelty import CARD_KEY

from . import spec
from .body import read_body
from .current import core, data_plane, registry_view, settings
from .json_provider import encode
from .predict import remember, with_model_version
from .responses import InferResponse, V2Live, V2Model, V2ModelReady, V2Ready, V2Server
from .tensors import array_from_json, to_images
from .wire import IN_DISTRIBUTION, InferInput, InferOutput, InferRequest, decode

bp = Blueprint("v2", __name__, url_prefix="/v2")

SERVER_NAME = "fashion-serve"
EXTENSIONS = ("binary_tensor_data", "classification")
PLATFORM = "onnxruntime_onnx"
INPUT = {"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, IMAGE_SIDE, IMAGE_SIDE]}
OUTPUT = {"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, len(CLASS_NAMES)]}
# A version that judges its inputs offers these too, when a request asks for them.
JUDGEMENT_OUTPUTS = [
    {"name": NOVELTY_NAME, "datatype": "FP32", "shape": [-1]},
    {"name": IN_DISTRIBUTION, "datatype": "BOOL", "shape": [-1]},
]
HEADER_LENGTH = "Inference-Header-Content-Length"
# Binary tensors are little-endian, as the extension specifies.
DATATYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}


# -- health and metadata -----------------------------------------------------------------------


@bp.get("")
def server_metadata() -> Response:
    """Server name, version and the protocol extensions it supports."""
    return jsonify(name=SERVER_NAME, version=__version__, extensions=list(EXTENSIONS))


@bp.get("/health/live")
def server_live() -> Response:
    """The process answers."""
    return jsonify(live=True)


@bp.get("/health/ready")
def server_ready() -> tuple[Response, int]:
    """Ready once the default model is loaded (as /readyz)."""
    ready = core().is_ready()
    return jsonify(ready=ready), 200 if ready else 503


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> Response:
    """The model's versions, platform and tensor signature (the ONNX contract)."""
    # 404 for an unknown model or version.
    number = parse_version(version)
    versions = registry_view().versions(name, number)
    outputs = [OUTPUT]
    if number is not None and CARD_KEY in registry_view().version_card(name, number):
        outputs += JUDGEMENT_OUTPUTS
    return jsonify(
        name=name,
        versions=[str(v) for v in versions],
        platform=PLATFORM,
        inputs=[INPUT],
        outputs=outputs,
    )


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> Response:
    """200 when this version (default: the default alias's) is loaded or loads now; else 4xx/503."""
    loaded, _ = data_plane().model(name, parse_version(version))
    return with_model_version(jsonify(name=loaded.name, ready=True), loaded)


# -- inference ---------------------------------------------------------------------------------


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    """Classify the `image` tensor (FP32 0..1 or UINT8 0..255, [N,28,28]); JSON or binary."""
    number = parse_version(version)
    header, binary = _read_request()
    images = _input_images(header.inputs[0], binary)
    outputs = _requested_outputs(header)
    started = time.perf_counter()
    result = data_plane().predict_array(images, name=name, version=number)
    remember(result, started)
    return _infer_response(result, header.id, outputs)


def _read_request() -> tuple[InferRequest, memoryview]:
    """The JSON inference header and the binary tensor data after it (possibly empty)."""
    length = request.headers.get(HEADER_LENGTH)
    if length is not None and not (length.isascii() and length.isdigit()):
        raise BadRequest(f"{HEADER_LENGTH} must be a byte count within the body, not {length!r}")
    prefix = -1 if length is None else int(length)
    body = read_body(settings(), json_prefix=prefix)
    split = len(body) if length is None else prefix
    if split > len(body):
        raise BadRequest(f"{HEADER_LENGTH} must be a byte count within the body, not {length!r}")
    header = decode(InferRequest, body[:split], "inference request")
    return header, memoryview(body)[split:]


def _input_images(tensor: InferInput, binary: memoryview) -> np.ndarray:
    """The `image` input as float32 [N,28,28], from JSON data or the binary section."""
    datatype, shape = tensor.datatype, list(tensor.shape)
    parameters = _parameters(tensor.parameters, "input")
    size = parameters.get("binary_data_size")
    count = math.prod(shape)
    if size is None:
        if tensor.data is None:
            raise BadRequest("the input has neither 'data' nor a 'binary_data_size' parameter")
        array = array_from_json(tensor.data, datatype, "input data")
    else:
        dtype = DATATYPES[datatype]
        if type(size) is not int or size != count * dtype.itemsize:
            raise BadRequest(
                f"binary_data_size must be {count * dtype.itemsize} bytes for {datatype} "
                f"{shape}, not {size!r}"
            )
        if size != len(binary):
            raise BadRequest(f"expected {size} bytes of binary tensor data, got {len(binary)}")
        array = np.frombuffer(binary, dtype=dtype, count=count)
    if array.size != count:
        raise BadRequest(f"input data holds {array.size} values; shape {shape} needs {count}")
    return to_images(array.reshape(shape), datatype)


def _requested_outputs(header: InferRequest) -> list[dict[str, Any]]:
    """Per output asked for (default: `probabilities`): {"name", "binary": bool, "classes": k};
    k > 0 means Triton classification (of `probabilities` only)."""
    binary = _parameters(header.parameters, "request").get("binary_data_output", False)
    if type(binary) is not bool:
        raise BadRequest("binary_data and binary_data_output must be true or false")
    asked = header.outputs or [InferOutput(OUTPUT_NAME)]
    if len({output.name for output in asked}) != len(asked):
        raise BadRequest("each output may be asked for once")
    outputs = []
    for output in asked:
        parameters = _parameters(output.parameters, "output")
        wants_binary = parameters.get("binary_data", binary)
        classes = parameters.get("classification", 0)
        if type(wants_binary) is not bool:
            raise BadRequest("binary_data and binary_data_output must be true or false")
        if type(classes) is not int or not 0 <= classes <= len(CLASS_NAMES):
            raise BadRequest(f"classification must be an integer 0..{len(CLASS_NAMES)}")
        if classes and output.name != OUTPUT_NAME:
            raise BadRequest(f"classification applies to {OUTPUT_NAME!r} only")
        outputs.append({"name": output.name, "binary": wants_binary, "classes": classes})
    return outputs


def _parameters(parameters: dict[str, Any] | None, what: str) -> dict[str, Any]:
    parameters = parameters or {}
    if "shared_memory_region" in parameters:
        raise BadRequest("shared memory is not supported: send the tensor in the request")
    return parameters


def _infer_response(
    result: Result, request_id: str | None, outputs: list[dict[str, Any]]
) -> Response:
    """The inference response, each output inline (JSON) or after the header (binary)."""
    tensors: list[dict[str, Any]] = []
    raws: list[bytes] = []
    for output in outputs:
        tensor, raw = _output_tensor(result, output)
        if raw is not None:
            tensor["parameters"] = {"binary_data_size": len(raw)}
            raws.append(raw)
        tensors.append(tensor)
    body: dict[str, Any] = {
        "model_name": result.model.name,
        "model_version": str(result.model.version),
    }
    if request_id is not None:
        body["id"] = request_id
    body["outputs"] = tensors
    header = encode(body, newline=not raws)
    if not raws:
        response = Response(header, content_type="application/json")
    else:
        response = Response(header + b"".join(raws), content_type="application/octet-stream")
        response.headers[HEADER_LENGTH] = str(len(header))
    return with_model_version(response, result.model)


def _output_tensor(result: Result, output: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """One output tensor's JSON header and, when asked for binary, its raw bytes."""
    name, binary = output["name"], output["binary"]
    if output["classes"]:
        return _classification(result.probabilities, output["classes"], binary)
    array, datatype = result.probabilities, "FP32"
    if name != OUTPUT_NAME:
        if result.novelty is None or result.in_distribution is None:
            raise BadRequest(
                f"version {result.model.version} of {result.model.name} does not judge its "
                f"inputs: it has no {NOVELTY_NAME!r} or {IN_DISTRIBUTION!r} output"
            )
        array, datatype = (
            (result.novelty, "FP32") if name == NOVELTY_NAME else (result.in_distribution, "BOOL")
        )
    tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if not binary:
        tensor["data"] = array.ravel().tolist()
        return tensor, None
    # BOOL travels as one byte per element, FP32 as little-endian floats.
    dtype = "u1" if datatype == "BOOL" else "<f4"
    return tensor, array.astype(dtype, copy=False).tobytes()


def _classification(
    probabilities: np.ndarray, k: int, binary: bool
) -> tuple[dict[str, Any], bytes | None]:
    """Triton's classification extension: the top k as "score:index:label" BYTES per image."""
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    strings = [
        f"{row[i]:f}:{i}:{CLASS_NAMES[i]}"
        for row, best in zip(probabilities.tolist(), top.tolist(), strict=True)
        for i in best
    ]
    tensor = {"name": OUTPUT_NAME, "datatype": "BYTES", "shape": [len(probabilities), k]}
    if not binary:
        tensor["data"] = strings
        return tensor, None
    # BYTES elements travel as a 4-byte little-endian length followed by the bytes.
    raw = b"".join(len(s).to_bytes(4, "little") + s.encode() for s in strings)
    return tensor, raw


# -- the OpenAPI paths -------------------------------------------------------------------------


_TAG = "open inference protocol (v2)"


def _get(summary: str, parameters: list[spec.Schema], description: str, model: type) -> spec.Schema:
    """A model's metadata or readiness: 4xx/503 for an unknown or unloadable one."""
    ok = {"200": spec.ok(description, spec.ref(model))}
    return {"get": spec.operation(_TAG, summary, parameters, ok, (400, 404, 503), plain=True)}


def _infer(parameters: list[spec.Schema]) -> spec.Schema:
    header = {
        "name": HEADER_LENGTH,
        "in": "header",
        "description": "Binary tensor data extension: the length of the JSON header at the "
        "start of the body; the binary tensors follow it.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
    ok = {
        "description": "The `probabilities` output, or the outputs asked for (`novelty` FP32 "
        "[N] and `in_distribution` BOOL [N] from a version that judges its inputs; asking "
        "another version for them is a 400); with binary outputs requested, the body is the "
        f"JSON header ({HEADER_LENGTH} bytes) then the raw tensors in the outputs' order.",
        "headers": {
            **spec.MODEL_VERSION,
            HEADER_LENGTH: {
                "description": "Present when binary outputs follow the JSON header.",
                "schema": spec.STRING,
            },
        },
        "content": {
            **spec.json_content(spec.ref(InferResponse)),
            "application/octet-stream": {"schema": spec.BINARY},
        },
    }
    body = {
        **spec.json_content(spec.ref(InferRequest)),
        "application/octet-stream": {"schema": spec.BINARY},
    }
    return {
        "post": spec.operation(
            _TAG,
            "Classify an `image` tensor (JSON, or binary tensor data).",
            [*parameters, header],
            {"200": ok},
            (400, 404, 413, 415, 503),
            plain=True,
            requestBody={"required": True, "content": body},
        )
    }


_MODEL = "/v2/models/{name}"
_VERSION = "/v2/models/{name}/versions/{version}"

PATHS: spec.Paths = {
    "/v2": {
        "get": spec.operation(
            _TAG,
            "Server metadata.",
            [],
            {"200": spec.ok("Name, version, extensions.", spec.ref(V2Server))},
        )
    },
    "/v2/health/live": {
        "get": spec.operation(
            _TAG, "Server liveness.", [], {"200": spec.ok("Alive.", spec.ref(V2Live))}
        )
    },
    "/v2/health/ready": {
        "get": spec.operation(
            _TAG,
            "Server readiness.",
            [],
            {
                "200": spec.ok("Ready.", spec.ref(V2Ready)),
                "503": spec.ok("Not ready.", spec.ref(V2Ready)),
            },
        )
    },
    _MODEL: _get("Model metadata: versions, platform, tensors.", [spec.NAME], "Metadata.", V2Model),
    _VERSION: _get("Model version metadata.", [spec.NAME, spec.VERSION], "Metadata.", V2Model),
    f"{_MODEL}/ready": _get(
        "Is the model's default alias ready (loading it if needed)?",
        [spec.NAME],
        "Ready.",
        V2ModelReady,
    ),
    f"{_VERSION}/ready": _get(
        "Is this version ready (loading it if needed)?",
        [spec.NAME, spec.VERSION],
        "Ready.",
        V2ModelReady,
    ),
    f"{_MODEL}/infer": _infer([spec.NAME]),
    f"{_VERSION}/infer": _infer([spec.NAME, spec.VERSION]),
}
