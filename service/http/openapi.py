"""The OpenAPI 3.1 document: the blueprints' paths, and components generated from wire models."""

from collections.abc import Iterable
from typing import Any

import msgspec

from service import __version__

from . import responses, wire
from .spec import Paths, Schema

# The bodies the paths refer to; the models they nest are found by msgspec.
MODELS = (
    wire.InferRequest,
    wire.TfPredictRequest,
    wire.AliasRequest,
    responses.Error,
    responses.PlainError,
    responses.PredictResponse,
    responses.PreprocessResponse,
    responses.ActivationsResponse,
    responses.ModelList,
    responses.ModelDetail,
    responses.VersionCard,
    responses.AliasChange,
    responses.Health,
    responses.Ready,
    responses.V2Server,
    responses.V2Live,
    responses.V2Ready,
    responses.V2ModelReady,
    responses.V2Model,
    responses.InferResponse,
    responses.TfModelStatus,
    responses.TfPredictResponse,
)


def components() -> dict[str, Any]:
    """The models' JSON Schemas, as OpenAPI components (#/components/schemas/<class name>)."""
    _, schemas = msgspec.json.schema_components(MODELS, ref_template="#/components/schemas/{name}")
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
