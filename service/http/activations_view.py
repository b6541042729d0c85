"""POST /models/<name>/activations: one image in, the answering version's hidden layers out."""

from flask import Blueprint, Response

from service.errors import BadRequest

from . import predict, spec
from .current import data_plane
from .json_provider import json_response
from .predict import result_body, with_model_version
from .query import model_query
from .responses import ActivationsResponse
from .uploads import uploaded_images

bp = Blueprint("activations", __name__)


@bp.post("/models/<name>/activations")
def activations(name: str) -> Response:
    """Classify one image and return every hidden layer's activations for it."""
    query = model_query()
    images = uploaded_images()
    if len(images) != 1:
        raise BadRequest(f"send exactly one image to explain, not {len(images)}")
    result, inside = data_plane().explain_image(images[0], name=name, **query)
    body = result_body(result)
    body = {"model": body["model"], "prediction": body["predictions"][0], **inside.as_dict()}
    return with_model_version(json_response(body), result.model)


_OPERATION = predict.operation(
    "Classify one image and return the hidden layers' activations.",
    [spec.NAME],
    ActivationsResponse,
    "The prediction and every hidden layer.",
)
PATHS: spec.Paths = {
    "/models/{name}/activations": {
        "post": {
            **_OPERATION,
            "tags": ["inside the network"],
            "description": "Computed from the version's own ONNX graph: every non-linearity's "
            "output (ReLU, ...) is read as a layer. Dense layers come as `values[units]`, "
            "convolutional ones as feature maps `values[channels][height][width]`. `readout` "
            "gives, for the dense layer feeding the ten class scores, each unit's activation × "
            "its weight to the winning class (null when the graph has no such layer). Send "
            "exactly one image.",
        }
    }
}
