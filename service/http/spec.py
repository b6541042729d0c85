"""The OpenAPI 3.1 document: the pieces each blueprint declares its PATHS with, and document(),
which joins those paths to the schemas msgspec generates from the models they refer to."""

from collections.abc import Iterable
from typing import Any

import msgspec

from service import __version__
from service.contract import ALIAS_PATTERN, NAME_PATTERN, VERSION_PATTERN
from service.novelty import UNKNOWN_CHOICES
from service.preprocess import INVERT_CHOICES, MODE_CHOICES

from .responses import Error, PlainError

Schema = dict[str, Any]  # a JSON object of the document
Paths = dict[str, Schema]  # path template → its operations, as each blueprint declares them

STRING = {"type": "string"}
BINARY = {"type": "string", "format": "binary"}
MODEL_VERSION = {"X-Model-Version": {"$ref": "#/components/headers/X-Model-Version"}}


# Every model a path refers to, by name: the document's components are generated from these.
_REFERRED: dict[str, type] = {}


def ref(model: type) -> Schema:
    """A reference to a wire model's component (components are named after the class)."""
    _REFERRED[model.__name__] = model
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def ok(description: str, schema: Schema, media_type: str = "application/json") -> Schema:
    return {"description": description, "content": {media_type: {"schema": schema}}}


ASSET = ok("The asset.", {}, "*/*")  # a static file of any type

# What each error status means; an operation lists the ones it can answer.
_ERRORS = {
    400: "Bad request: a malformed body, parameter or name.",
    401: "A valid `Authorization: Bearer <token>` header is required.",
    403: "Model management is disabled (no FASHION_ADMIN_TOKEN on the server).",
    404: "Unknown model, version or alias (or path); for feedback, a request not remembered.",
    409: "The alias has no previous target to roll back to.",
    413: "Body over the upload limit (chunked or not, and after gzip/deflate decompression), a JSON"
    " body holding more values than a full batch, more images than the batch limit, or an image"
    " declaring more pixels than allowed.",
    429: "Too many requests from this client (rate_limited, with Retry-After).",
    415: "Unsupported Content-Type or image type.",
    422: "The image cannot be decoded (damaged or truncated), or, in photo mode, no object stands "
    "out from its ground (code no_object_found).",
    503: "The model is not loaded (yet), or was refused; or this worker is loading other"
    " versions at its limit (load_throttled, with Retry-After); or the request's work ran past"
    " its budget, FASHION_REQUEST_TIMEOUT (timeout, with Retry-After).",
}


def errors(*statuses: int, plain: bool = False) -> Schema:
    """Error responses: the house shape, or {"error": "..."} for the /v1 and /v2 protocols."""
    schema = ref(PlainError if plain else Error)
    return {str(s): {"description": _ERRORS[s], "content": json_content(schema)} for s in statuses}


def operation(
    tag: str,
    summary: str,
    parameters: list[Schema],
    responses: Schema,
    refusals: tuple[int, ...] = (),
    plain: bool = False,
    **more: Any,
) -> Schema:
    """An operation: its answers, then the error statuses it can refuse a request with."""
    return {
        "tags": [tag],
        "summary": summary,
        "parameters": parameters,
        **more,
        "responses": {**responses, **errors(*refusals, plain=plain)},
    }


def path_parameter(name: str, description: str, schema: Schema, example: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
        "example": example,
    }


VERSION_SCHEMA = {"type": "string", "pattern": f"^{VERSION_PATTERN}$"}
ALIAS_SCHEMA = {"type": "string", "pattern": f"^{ALIAS_PATTERN}$"}
NAME = path_parameter(
    "name", "Model name.", {"type": "string", "pattern": f"^{NAME_PATTERN}$"}, "fashion-mnist"
)
VERSION = path_parameter("version", "Model version, a positive integer.", VERSION_SCHEMA, "1")
ALIAS = path_parameter(
    "alias",
    "Alias name (e.g. production): starts with a letter, so it never looks like a version.",
    ALIAS_SCHEMA,
    "production",
)
MODEL_QUERY = [
    {
        "name": "version",
        "in": "query",
        "description": "Serve with this version (not with alias).",
        "schema": VERSION_SCHEMA,
    },
    {
        "name": "alias",
        "in": "query",
        "description": "Serve with this alias's version (default: production).",
        "schema": ALIAS_SCHEMA,
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
UNKNOWN_QUERY = [
    {
        "name": "unknown",
        "in": "query",
        "description": "What to do with a picture the answering version judges not like its "
        "training data (not clothing). flag: answer as usual, with in_distribution false. "
        "reject: refuse the whole request with 422 not_clothing naming the image and the "
        "version. A version without a judgement (in_distribution null) never rejects.",
        "schema": {"type": "string", "enum": list(UNKNOWN_CHOICES), "default": "flag"},
    }
]
IMAGES_BODY = {
    "required": True,
    "description": "Multipart field `image` (repeat it for a batch), or the raw image bytes.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {"image": {"type": "array", "minItems": 1, "items": BINARY}},
            },
            "encoding": {"image": {"contentType": "image/*"}},
        },
        "image/*": {"schema": BINARY},
        "application/octet-stream": {"schema": BINARY},
    },
}


def components() -> dict[str, Any]:
    """The models' JSON Schemas, as OpenAPI components (#/components/schemas/<class name>)."""
    _, schemas = msgspec.json.schema_components(
        _REFERRED.values(), ref_template="#/components/schemas/{name}"
    )
    return dict(sorted(schemas.items()))


def document(declared: Iterable[Paths]) -> Schema:
    """The whole document, from each blueprint's declared paths."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fashion-serve",
            "version": __version__,
            "description": "Classify Fashion-MNIST clothing images with versioned ONNX models. "
            "Native endpoints, the Open Inference Protocol (KServe v2, with Triton's binary tensor"
            " extension) and TensorFlow Serving's REST API. Every response carries X-Request-ID.",
        },
        "tags": [
            {"name": "predict"},
            {"name": "inside the network"},
            {"name": "models"},
            {"name": "feedback"},
            {"name": "health"},
            {"name": "open inference protocol (v2)"},
            {"name": "tensorflow serving (v1)"},
            {"name": "operations"},
            {"name": "page"},
        ],
        "paths": {path: item for paths in declared for path, item in paths.items()},
        "components": {
            "schemas": components(),
            "headers": {
                "X-Model-Version": {
                    "description": "name:version of the model that answered.",
                    "schema": {"type": "string"},
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
