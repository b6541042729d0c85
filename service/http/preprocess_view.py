"""POST /preprocess: see what the model saw, the 28×28 an upload becomes, as PNG or JSON numbers."""

import io

import numpy as np
from flask import Blueprint, Response, request
from PIL import Image

from service.errors import BadRequest
from service.preprocess import MODE_CHOICES, Preprocessed, parse_choice

from . import spec
from .current import data_plane
from .json_provider import JSON, json_response
from .query import image_query
from .responses import PreprocessResponse
from .uploads import uploaded_images

bp = Blueprint("preprocess", __name__)

FORMATS = ("png", "json")
ACCEPTED = ("image/png", JSON)  # in order of preference: */* gets the PNG
MODE_HEADER = "X-Preprocess-Mode"


@bp.post("/preprocess")
def preprocess() -> Response:
    """The model's input for the uploaded images: one PNG, or JSON for ?format=json or a batch."""
    asked = _asked_format(request.args.get("format"))
    result = data_plane().preprocess(uploaded_images(), image_query())
    batch = len(result.modes) > 1
    if asked == "png" and batch:
        raise BadRequest("a batch is answered as JSON: send ?format=json, or one image")
    if asked == "json" or batch or request.accept_mimetypes.best_match(ACCEPTED) == JSON:
        return json_response(_json_body(result))
    response = Response(_png(result.images[0]), mimetype="image/png")
    response.headers[MODE_HEADER] = result.modes[0]
    return response


def _asked_format(value: str | None) -> str | None:
    """png or json from ?format=, validated; None: the Accept header decides (PNG by default)."""
    return None if value is None else parse_choice("format", value, FORMATS)


def _png(image: np.ndarray) -> bytes:
    """The 28×28 as an 8-bit grey PNG: exactly the model's input, ×255."""
    buffer = io.BytesIO()
    Image.fromarray(np.rint(image * 255).astype(np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def _json_body(result: Preprocessed) -> dict[str, object]:
    """Each image's pixels as rows of numbers in 0..1 (float32, shortest exact form)."""
    return {
        "images": [
            {"width": image.shape[1], "height": image.shape[0], "pixels": image, "mode": mode}
            for image, mode in zip(result.images, result.modes, strict=True)
        ]
    }


PATHS: spec.Paths = {
    "/preprocess": {
        "post": {
            "tags": ["predict"],
            "summary": "See what the model saw: the 28×28 each image becomes.",
            "description": "One image answers image/png (8-bit grey, exactly the model's input "
            "×255, the mode used in X-Preprocess-Mode); ?format=json, Accept: application/json "
            "or a batch answers JSON, pixels in 0..1.",
            "parameters": [
                *spec.IMAGE_QUERY,
                {
                    "name": "format",
                    "in": "query",
                    "description": "png (one image only) or json; default: from the Accept "
                    "header, PNG.",
                    "schema": {"type": "string", "enum": list(FORMATS)},
                },
            ],
            "requestBody": spec.IMAGES_BODY,
            "responses": {
                "200": {
                    "description": "The model's input.",
                    "content": {
                        "image/png": {"schema": spec.BINARY},
                        **spec.json_content(spec.ref(PreprocessResponse)),
                    },
                    "headers": {
                        MODE_HEADER: {
                            "description": "photo or dataset: how the image was read (PNG "
                            "answers).",
                            "schema": {
                                "type": "string",
                                "enum": [m for m in MODE_CHOICES if m != "auto"],
                            },
                        }
                    },
                },
                **spec.errors(400, 413, 415, 422),
            },
        }
    }
}
