"""The OpenAPI 3.1 description of every endpoint (tests/http/test_openapi.py keeps it complete)."""

from typing import Any

from service import __version__
from service.contract import (
    ALIAS_PATTERN,
    CLASS_NAMES,
    IMAGE_SIDE,
    NAME_PATTERN,
    NUM_CLASSES,
    VERSION_PATTERN,
)
from service.inference import PUBLIC_FILES
from service.preprocess import INVERT_CHOICES, MODE_CHOICES

from . import wire
from .preprocess import FORMATS, MODE_HEADER

MODEL_EXAMPLE = "fashion-mnist"
Schema = dict[str, Any]  # a JSON object of the document


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": _json(schema)}


# What each error status means; an operation lists the ones it can answer.
_ERRORS = {
    400: "Bad request: a malformed body, parameter or name.",
    401: "A valid `Authorization: Bearer <token>` header is required.",
    403: "Model management is disabled (no FASHION_ADMIN_TOKEN on the server).",
    404: "Unknown model, version or alias (or path).",
    409: "The alias has no previous target to roll back to.",
    413: "Body over the upload limit (chunked or not, and after gzip/deflate decompression), a JSON"
    " body holding more values than a full batch, more images than the batch limit, or an image"
    " declaring more pixels than allowed.",
    415: "Unsupported Content-Type or image type.",
    422: "The image cannot be decoded (damaged or truncated), or, in photo mode, no object stands "
    "out from its ground (code no_object_found).",
    503: "The model is not loaded (yet), or was refused; or this worker is loading other"
    " versions at its limit (load_throttled, with Retry-After).",
}


def _errors(*statuses: int, plain: bool = False) -> Schema:
    """Error responses: the house shape, or {"error": "..."} for the /v1 and /v2 protocols."""
    schema = _ref("PlainError" if plain else "Error")
    return {str(s): {"description": _ERRORS[s], "content": _json(schema)} for s in statuses}


def _path(name: str, description: str, schema: Schema, example: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
        "example": example,
    }


NAME_RE = f"^{NAME_PATTERN}$"
ALIAS_RE = f"^{ALIAS_PATTERN}$"
VERSION_RE = f"^{VERSION_PATTERN}$"
NAME = _path("name", "Model name.", {"type": "string", "pattern": NAME_RE}, MODEL_EXAMPLE)
VERSION = _path(
    "version", "Model version, a positive integer.", {"type": "string", "pattern": VERSION_RE}, "1"
)
ALIAS = _path(
    "alias",
    "Alias name (e.g. production): starts with a letter, so it never looks like a version.",
    {"type": "string", "pattern": ALIAS_RE},
    "production",
)
MODEL_QUERY = [
    {
        "name": "version",
        "in": "query",
        "description": "Serve with this version (not with alias).",
        "schema": {"type": "string", "pattern": VERSION_RE},
    },
    {
        "name": "alias",
        "in": "query",
        "description": "Serve with this alias's version (default: production).",
        "schema": {"type": "string", "pattern": ALIAS_RE},
    },
]
IMAGE_QUERY = [
    {
        "name": "mode",
        "in": "query",
        "description": "How an image is read. photo: the dataset's own conversion (the ground is "
        "estimated and divided out, the picture trimmed to the object, its longest edge resized "
        "to 28, centred, negated); a photo with no object on its ground is refused (422). "
        "dataset: taken as it is, resized whole to 28×28. auto: dataset for a 28×28 picture, "
        "photo otherwise.",
        "schema": {"type": "string", "enum": list(MODE_CHOICES), "default": "auto"},
    },
    {
        "name": "invert",
        "in": "query",
        "description": "Whether the object is darker than its ground (true) or lighter (false). "
        "auto: in photo mode, the side the object stands out on; in dataset mode, inverts a "
        "picture on a light ground (Fashion-MNIST is light on dark).",
        "schema": {"type": "string", "enum": list(INVERT_CHOICES), "default": "auto"},
    },
]
IMAGES_BODY = {
    "required": True,
    "description": "Multipart field `image` (repeat it for a batch), or the raw image bytes.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "format": "binary"},
                    }
                },
            },
            "encoding": {"image": {"contentType": "image/*"}},
        },
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


def _predict_op(summary: str, params: list[Schema]) -> Schema:
    return {
        "tags": ["predict"],
        "summary": summary,
        "parameters": [*params, *MODEL_QUERY, *IMAGE_QUERY],
        "requestBody": IMAGES_BODY,
        "responses": {
            "200": {
                **_ok("All ten class probabilities per image.", _ref("PredictResponse")),
                "headers": {"X-Model-Version": {"$ref": "#/components/headers/X-Model-Version"}},
            },
            **_errors(400, 404, 413, 415, 422, 503),
        },
    }


def _v2_op(
    summary: str, params: list[Schema], response: Schema, *errors: int, **extra: Any
) -> Schema:
    return {
        "tags": ["open inference protocol (v2)"],
        "summary": summary,
        "parameters": params,
        **extra,
        "responses": {"200": response, **_errors(*errors, plain=True)},
    }


def _v2_infer(params: list[Schema]) -> Schema:
    return _v2_op(
        "Classify an `image` tensor (JSON, or binary tensor data).",
        [
            *params,
            {
                "name": "Inference-Header-Content-Length",
                "in": "header",
                "description": "Binary tensor data extension: the length of the JSON header at the "
                "start of the body; the binary tensors follow it.",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
        ],
        {
            "description": "The `probabilities` output; with binary outputs requested, the body "
            "is the JSON header (Inference-Header-Content-Length bytes) then the raw tensor.",
            "headers": {
                "X-Model-Version": {"$ref": "#/components/headers/X-Model-Version"},
                "Inference-Header-Content-Length": {
                    "description": "Present when binary outputs follow the JSON header.",
                    "schema": {"type": "string"},
                },
            },
            "content": {
                **_json(_ref("InferResponse")),
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        400,
        404,
        413,
        415,
        503,
        requestBody={
            "required": True,
            "content": {
                **_json(_ref("InferRequest")),
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    )


def _tf_predict(params: list[Schema]) -> Schema:
    return {
        "tags": ["tensorflow serving (v1)"],
        "summary": "Classify 28×28 arrays (0..1) or base64 images: rows or columns.",
        "parameters": params,
        "requestBody": {"required": True, "content": _json(_ref("TfPredictRequest"))},
        "responses": {
            "200": _ok(
                "predictions (for instances) or outputs (for inputs): ten probabilities each.",
                _ref("TfPredictResponse"),
            ),
            **_errors(400, 404, 413, 415, 422, 503, plain=True),
        },
    }


def _tf_status(params: list[Schema]) -> Schema:
    return {
        "tags": ["tensorflow serving (v1)"],
        "summary": "The version that answers, in TF Serving's model status shape.",
        "parameters": params,
        "responses": {
            "200": _ok("Model version status.", _ref("TfModelStatus")),
            **_errors(400, 404, 503, plain=True),
        },
    }


def _activations_op() -> dict[str, Any]:
    operation = _predict_op("Classify one image and return the hidden layers' activations.", [NAME])
    return {
        **operation,
        "tags": ["inside the network"],
        "description": "Computed from the version's own ONNX graph: every non-linearity's output "
        "(ReLU, ...) is read as a layer. Dense layers come as `values[units]`, convolutional "
        "ones as feature maps `values[channels][height][width]`. `readout` gives, for the dense "
        "layer feeding the ten class scores, each unit's activation × its weight to the winning "
        "class (null when the graph has no such layer). Send exactly one image.",
        "responses": {
            **operation["responses"],
            "200": {
                **_ok("The prediction and every hidden layer.", _ref("ActivationsResponse")),
                "headers": {"X-Model-Version": {"$ref": "#/components/headers/X-Model-Version"}},
            },
        },
    }


_PAGE = {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}

_PREPROCESS_OP = {
    "tags": ["predict"],
    "summary": "See what the model saw: the 28×28 each image becomes.",
    "description": "One image answers image/png (8-bit grey, exactly the model's input ×255, the "
    "mode used in X-Preprocess-Mode); ?format=json, Accept: application/json or a batch answers "
    "JSON, pixels in 0..1.",
    "parameters": [
        *IMAGE_QUERY,
        {
            "name": "format",
            "in": "query",
            "description": "png (one image only) or json; default: from the Accept header, PNG.",
            "schema": {"type": "string", "enum": list(FORMATS)},
        },
    ],
    "requestBody": IMAGES_BODY,
    "responses": {
        "200": {
            "description": "The model's input.",
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                **_json(_ref("PreprocessResponse")),
            },
            "headers": {
                MODE_HEADER: {
                    "description": "photo or dataset: how the image was read (PNG answers).",
                    "schema": {"type": "string", "enum": [m for m in MODE_CHOICES if m != "auto"]},
                }
            },
        },
        **_errors(400, 413, 415, 422),
    },
}

_V2_MODEL = "/v2/models/{name}"
_V2_VERSION = "/v2/models/{name}/versions/{version}"

PATHS = {
    "/predict": {"post": _predict_op("Classify images with the default model.", [])},
    "/models/{name}/predict": {"post": _predict_op("Classify images with a model.", [NAME])},
    "/models/{name}/activations": {"post": _activations_op()},
    "/preprocess": {"post": _PREPROCESS_OP},
    "/models": {
        "get": {
            "tags": ["models"],
            "summary": "Every model with its versions and aliases.",
            "responses": {
                "200": _ok("The registry's models.", _ref("ModelList")),
                **_errors(503),
            },
        }
    },
    "/models/{name}": {
        "get": {
            "tags": ["models"],
            "summary": "A model's versions (with test accuracy), aliases and alias history.",
            "parameters": [NAME],
            "responses": {
                "200": _ok("The model.", _ref("ModelDetail")),
                **_errors(400, 404, 503),
            },
        }
    },
    "/models/{name}/versions/{version}": {
        "get": {
            "tags": ["models"],
            "summary": "A version's card, and whether this worker serves it and on what.",
            "parameters": [NAME, VERSION],
            "responses": {
                "200": _ok("The version card (model.json) plus `serving`.", _ref("VersionCard")),
                **_errors(400, 404, 503),
            },
        }
    },
    "/models/{name}/versions/{version}/files/{filename}": {
        "get": {
            "tags": ["models"],
            "summary": "A stored plot of a version: training curves or confusion matrix.",
            "parameters": [
                NAME,
                VERSION,
                _path(
                    "filename",
                    "One of the files a version may serve.",
                    {"type": "string", "enum": list(PUBLIC_FILES)},
                    "training.png",
                ),
            ],
            "responses": {
                "200": {
                    "description": "The file (immutable, like the version).",
                    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                },
                **_errors(400, 404, 503),
            },
        }
    },
    "/models/{name}/aliases/{alias}": {
        "put": {
            "tags": ["models"],
            "summary": "Point an alias at a version (admin token required).",
            "parameters": [NAME, ALIAS],
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": _json(_ref("AliasRequest"))},
            "responses": {
                "200": _ok("The alias moved.", _ref("AliasChange")),
                **_errors(400, 401, 403, 404, 503),
            },
        },
        "delete": {
            "tags": ["models"],
            "summary": "Move an alias back to its previous version (admin token required).",
            "parameters": [NAME, ALIAS],
            "security": [{"bearer": []}],
            "responses": {
                "200": _ok("The alias moved back.", _ref("AliasChange")),
                **_errors(400, 401, 403, 404, 409, 503),
            },
        },
    },
    "/healthz": {
        "get": {
            "tags": ["health"],
            "summary": "Liveness: the process answers.",
            "responses": {"200": _ok("Alive.", _ref("Health"))},
        }
    },
    "/readyz": {
        "get": {
            "tags": ["health"],
            "summary": "Readiness: 200 once the default alias answers (even degraded), 503 before.",
            "responses": {
                "200": _ok(
                    "Ready; what this worker serves, has loaded and refused.", _ref("Ready")
                ),
                "503": _ok("Not ready, with the reasons.", _ref("Ready")),
            },
        }
    },
    "/v2": {
        "get": _v2_op("Server metadata.", [], _ok("Name, version, extensions.", _ref("V2Server")))
    },
    "/v2/health/live": {"get": _v2_op("Server liveness.", [], _ok("Alive.", _ref("V2Live")))},
    "/v2/health/ready": {
        "get": {
            **_v2_op("Server readiness.", [], _ok("Ready.", _ref("V2Ready"))),
            "responses": {
                "200": _ok("Ready.", _ref("V2Ready")),
                "503": _ok("Not ready.", _ref("V2Ready")),
            },
        }
    },
    _V2_MODEL: {
        "get": _v2_op(
            "Model metadata: versions, platform, tensors.",
            [NAME],
            _ok("Metadata.", _ref("V2Model")),
            400,
            404,
            503,
        )
    },
    _V2_VERSION: {
        "get": _v2_op(
            "Model version metadata.",
            [NAME, VERSION],
            _ok("Metadata.", _ref("V2Model")),
            400,
            404,
            503,
        )
    },
    f"{_V2_MODEL}/ready": {
        "get": _v2_op(
            "Is the model's default alias ready (loading it if needed)?",
            [NAME],
            _ok("Ready.", _ref("V2ModelReady")),
            400,
            404,
            503,
        )
    },
    f"{_V2_VERSION}/ready": {
        "get": _v2_op(
            "Is this version ready (loading it if needed)?",
            [NAME, VERSION],
            _ok("Ready.", _ref("V2ModelReady")),
            400,
            404,
            503,
        )
    },
    f"{_V2_MODEL}/infer": {"post": _v2_infer([NAME])},
    f"{_V2_VERSION}/infer": {"post": _v2_infer([NAME, VERSION])},
    "/v1/models/{name}": {"get": _tf_status([NAME])},
    "/v1/models/{name}/versions/{version}": {"get": _tf_status([NAME, VERSION])},
    "/v1/models/{name}/labels/{alias}": {"get": _tf_status([NAME, ALIAS])},
    "/v1/models/{name}:predict": {"post": _tf_predict([NAME])},
    "/v1/models/{name}/versions/{version}:predict": {"post": _tf_predict([NAME, VERSION])},
    "/v1/models/{name}/labels/{alias}:predict": {"post": _tf_predict([NAME, ALIAS])},
    "/metrics": {
        "get": {
            "tags": ["operations"],
            "summary": "Prometheus metrics (text exposition format), summed over all workers.",
            "responses": {
                "200": {
                    "description": "Prometheus text format 0.0.4.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/openapi.json": {
        "get": {
            "tags": ["operations"],
            "summary": "This document.",
            "responses": {"200": _ok("OpenAPI 3.1.", {"type": "object"})},
        }
    },
    "/docs": {
        "get": {
            "tags": ["operations"],
            "summary": "Interactive documentation of this API (Swagger UI, served locally).",
            "responses": {
                "200": {
                    "description": "The docs page.",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/": {
        "get": {
            "tags": ["page"],
            "summary": "The page for people: classify pictures, inside the network, models.",
            "responses": {"200": _PAGE},
        }
    },
    "/ui/{filename}": {
        "get": {
            "tags": ["page"],
            "summary": "The page's script, style and gallery images.",
            "parameters": [_path("filename", "Asset file.", {"type": "string"}, "page.js")],
            "responses": {
                "200": {"description": "The asset.", "content": {"*/*": {"schema": {}}}},
                **_errors(404),
            },
        }
    },
    "/docs/{filename}": {
        "get": {
            "tags": ["operations"],
            "summary": "The docs page's scripts and styles.",
            "parameters": [
                _path("filename", "Asset file.", {"type": "string"}, "swagger-ui-bundle.js")
            ],
            "responses": {
                "200": {"description": "The asset.", "content": {"*/*": {"schema": {}}}},
                **_errors(404),
            },
        }
    },
}


def _object(properties: Schema, required: list[str] | None = None, **extra: Any) -> Schema:
    """A JSON object schema; every listed property required unless told otherwise."""
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
        **extra,
    }


_STRING, _INT = {"type": "string"}, {"type": "integer"}
_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
_OPTIONAL_INT = {"type": ["integer", "null"]}
_TENSOR_META = _object(
    {"name": _STRING, "datatype": _STRING, "shape": {"type": "array", "items": _INT}}
)
_PARAMETERS = {"type": "object", "description": "Protocol parameters (binary_data, ...)."}

SCHEMAS = {
    "Error": _object(
        {"error": _object({"code": _STRING, "message": _STRING})},
        description="The house error body.",
    ),
    "PlainError": _object(
        {"error": _STRING}, description="The error body of the /v1 and /v2 protocols."
    ),
    "Probabilities": _object(
        dict.fromkeys(CLASS_NAMES, _PROBABILITY),
        additionalProperties=False,
        description="All ten classes, in class order.",
    ),
    "Prediction": _object(
        {
            "label": {"type": "string", "enum": list(CLASS_NAMES)},
            "class_id": {"type": "integer", "minimum": 0, "maximum": NUM_CLASSES - 1},
            "confidence": _PROBABILITY,
            "probabilities": _ref("Probabilities"),
        }
    ),
    "PredictResponse": _object(
        {
            "model": _object(
                {"name": _STRING, "version": _INT, "alias": {"type": ["string", "null"]}}
            ),
            "predictions": {"type": "array", "items": _ref("Prediction")},
        }
    ),
    "PreprocessResponse": _object(
        {
            "images": {
                "type": "array",
                "items": _object(
                    {
                        "width": {"const": IMAGE_SIDE},
                        "height": {"const": IMAGE_SIDE},
                        "pixels": {
                            "type": "array",
                            "minItems": IMAGE_SIDE,
                            "maxItems": IMAGE_SIDE,
                            "items": {
                                "type": "array",
                                "minItems": IMAGE_SIDE,
                                "maxItems": IMAGE_SIDE,
                                "items": _PROBABILITY,
                            },
                        },
                        "mode": {"type": "string", "enum": ["photo", "dataset"]},
                    }
                ),
            }
        }
    ),
    "ModelList": _object(
        {
            "models": {
                "type": "array",
                "items": _object(
                    {
                        "name": _STRING,
                        "versions": {"type": "array", "items": _INT},
                        "aliases": {"type": "object", "additionalProperties": _INT},
                        "default": {"type": "boolean"},
                    }
                ),
            }
        }
    ),
    "ModelDetail": _object(
        {
            "name": _STRING,
            "versions": {
                "type": "array",
                "items": _object(
                    {
                        "version": _INT,
                        "created_at": {"type": ["string", "null"]},
                        "test_accuracy": {"type": ["number", "null"]},
                    }
                ),
            },
            "aliases": {"type": "object", "additionalProperties": _INT},
            "alias_history": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": _INT},
            },
        }
    ),
    "VersionCard": _object(
        {
            "name": _STRING,
            "version": _INT,
            "sha256": _STRING,
            "serving": _object(
                {
                    "loaded": {"type": "boolean"},
                    "device": _STRING,
                    "providers": {"type": "array", "items": _STRING},
                    "provider_options": {
                        "type": "object",
                        "description": 'Options per provider (CUDA: use_tf32 "0").',
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": _STRING,
                        },
                    },
                }
            ),
            "files": {
                "type": "object",
                "description": "Size in bytes of model.onnx and each stored plot.",
                "additionalProperties": _INT,
            },
        },
        description="model.json as training wrote it (see the README), plus `serving` and `files`.",
    ),
    "ActivationsResponse": _object(
        {
            "model": _object(
                {"name": _STRING, "version": _INT, "alias": {"type": ["string", "null"]}}
            ),
            "prediction": _ref("Prediction"),
            "layers": {"type": "array", "items": _ref("Layer")},
            "readout": {"oneOf": [{"type": "null"}, _ref("Readout")]},
        }
    ),
    "Layer": _object(
        {
            "name": {"type": "string", "description": "The tensor's name in the ONNX graph."},
            "op": {"type": "string", "description": "The non-linearity, e.g. Relu."},
            "kind": {"type": "string", "enum": ["dense", "maps"]},
            "shape": {"type": "array", "items": _INT, "description": "[units] or [C,H,W]."},
            "values": {"type": "array", "description": "Activations, 4 decimals, nested as shape."},
        }
    ),
    "Readout": _object(
        {
            "layer": _STRING,
            "class_id": {"type": "integer", "minimum": 0, "maximum": NUM_CLASSES - 1},
            "label": {"type": "string", "enum": list(CLASS_NAMES)},
            "contributions": {
                "type": "array",
                "items": {"type": "number"},
                "description": "Per unit: activation × weight to the winning class's score.",
            },
        }
    ),
    "AliasRequest": _object({"version": {"type": "integer", "minimum": 1}}),
    "AliasChange": _object(
        {"model": _STRING, "alias": _STRING, "version": _INT, "previous": _OPTIONAL_INT}
    ),
    "Health": _object({"status": {"const": "ok"}}),
    "Ready": _object(
        {
            "ready": {"type": "boolean"},
            "status": {
                "enum": ["ready", "degraded", "not_ready"],
                "description": "degraded: an alias's target is refused and the last good"
                " version that verifies answers instead (still ready).",
            },
            "pid": _INT,
            "default": _object({"model": _STRING, "alias": _STRING}),
            "serving": {
                "type": "array",
                "items": _object(
                    {
                        "model": _STRING,
                        "alias": _STRING,
                        "version": _INT,
                        "degraded": {"type": "boolean"},
                    }
                ),
            },
            "loaded": {"type": "array", "items": {"type": "object"}},
            "refused": {"type": "array", "items": {"type": "object"}},
        }
    ),
    "V2Server": _object(
        {"name": _STRING, "version": _STRING, "extensions": {"type": "array", "items": _STRING}}
    ),
    "V2Live": _object({"live": {"type": "boolean"}}),
    "V2Ready": _object({"ready": {"type": "boolean"}}),
    "V2ModelReady": _object({"name": _STRING, "ready": {"type": "boolean"}}),
    "V2Model": _object(
        {
            "name": _STRING,
            "versions": {"type": "array", "items": _STRING},
            "platform": _STRING,
            "inputs": {"type": "array", "items": _TENSOR_META},
            "outputs": {"type": "array", "items": _TENSOR_META},
        }
    ),
    "InferResponse": _object(
        {
            "model_name": _STRING,
            "model_version": _STRING,
            "id": _STRING,
            "outputs": {
                "type": "array",
                "items": _object(
                    {
                        "name": _STRING,
                        "datatype": _STRING,
                        "shape": {"type": "array", "items": _INT},
                        "parameters": _PARAMETERS,
                        "data": {"type": "array"},
                    },
                    required=["name", "datatype", "shape"],
                ),
            },
        },
        required=["model_name", "model_version", "outputs"],
    ),
    "TfModelStatus": _object(
        {
            "model_version_status": {
                "type": "array",
                "items": _object(
                    {
                        "version": _STRING,
                        "state": _STRING,
                        "status": _object({"error_code": _STRING, "error_message": _STRING}),
                    }
                ),
            }
        }
    ),
    "TfPredictResponse": {
        "type": "object",
        "properties": {
            key: {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": _PROBABILITY,
                    "minItems": NUM_CLASSES,
                    "maxItems": NUM_CLASSES,
                },
            }
            for key in ("predictions", "outputs")
        },
    },
    # The request bodies /v2 infer and TF Serving predict decode into (service/http/wire.py).
    **wire.schemas(),
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "fashion-serve",
        "version": __version__,
        "description": "Classify Fashion-MNIST clothing images with versioned ONNX models. "
        "Native endpoints, the Open Inference Protocol (KServe v2, with Triton's binary tensor "
        "extension) and TensorFlow Serving's REST API. Every response carries X-Request-ID.",
    },
    "tags": [
        {"name": "predict"},
        {"name": "models"},
        {"name": "health"},
        {"name": "open inference protocol (v2)"},
        {"name": "tensorflow serving (v1)"},
        {"name": "operations"},
    ],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "headers": {
            "X-Model-Version": {
                "description": "name:version of the model that answered.",
                "schema": {"type": "string"},
            }
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
}
