"""What the HTTP tests share: upload bodies, the admin header, error checks, model outputs."""

import io

import numpy as np

from tests.conftest import MODEL

AUTH = {"Authorization": "Bearer s3cret-token"}


def upload(*images: bytes, field: str = "image") -> dict:
    """A multipart form with one file part per image (Flask's test client data= form)."""
    return {field: [(io.BytesIO(data), f"{i}.png") for i, data in enumerate(images)]}


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The house error body {"error": {"code", "message"}} with this status; returns it."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


def assert_plain_error(response, status: int) -> str:
    """The /v1 and /v2 error body {"error": "message"} with this status; returns the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert isinstance(error, str)
    assert error
    return error


def model_output(app, images: np.ndarray, version: int = 1) -> np.ndarray:
    """What the version's ONNX model gives in-process for float32 images."""
    return app.extensions["fashion_serve"].data_plane.model(MODEL, version)[0].model.run(images)
