"""A version's stored plots over HTTP: allow-listed, from the registry, never anything else."""

import numpy as np
import pytest

from tests.test_http import assert_error
from tests.test_inference import png


@pytest.fixture
def plot(registry) -> bytes:
    """A real PNG stored as version 1's training curves, as the training job leaves it."""
    data = png(np.arange(28 * 28).reshape(28, 28) % 256)
    (registry.version_dir("fashion-mnist", 1) / "training.png").write_bytes(data)
    return data


def test_a_stored_plot_is_served_as_png(client, plot):
    response = client.get("/models/fashion-mnist/versions/1/files/training.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data == plot
    assert "max-age" in response.headers["Cache-Control"]


def test_the_version_card_lists_file_sizes(client, registry, plot):
    files = client.get("/models/fashion-mnist/versions/1").get_json()["files"]
    model = registry.model_path("fashion-mnist", 1).stat().st_size
    assert files == {"model.onnx": model, "training.png": len(plot)}


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/models/fashion-mnist/versions/1/files/confusion.png", "file_not_found"),  # not stored
        ("/models/fashion-mnist/versions/1/files/model.onnx", "file_not_found"),  # not allowed
        ("/models/fashion-mnist/versions/1/files/model.json", "file_not_found"),
        ("/models/fashion-mnist/versions/1/files/..%2Faliases.json", "not_found"),  # no route
        ("/models/fashion-mnist/versions/9/files/training.png", "version_not_found"),
        ("/models/nope/versions/1/files/training.png", "model_not_found"),
    ],
)
def test_anything_else_is_a_clear_404(client, plot, path, code):
    assert_error(client.get(path), 404, code)


def test_a_bad_version_is_a_400(client):
    assert_error(client.get("/models/fashion-mnist/versions/01/files/training.png"), 400)
