"""The registry over HTTP: a version's stored plots, and damaged registries handled cleanly."""

import json
import shutil

import numpy as np
import pytest

from tests.conftest import MODEL
from tests.test_http import assert_error
from tests.test_inference import png

ADMIN = {"Authorization": "Bearer s3cret-token"}


def test_delete_rolls_back_when_the_current_target_is_gone(client, registry):
    """Issue 12.2: DELETE …/aliases/production answered 404 once its target was deleted."""
    moved = client.put(f"/models/{MODEL}/aliases/production", json={"version": 2}, headers=ADMIN)
    assert moved.status_code == 200
    shutil.rmtree(registry.version_dir(MODEL, 2))
    response = client.delete(f"/models/{MODEL}/aliases/production", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "model": MODEL, "alias": "production", "version": 1, "previous": 2
    }  # fmt: skip


def test_a_card_with_null_metrics_is_shown(client, registry):
    """Issue 12.6: /models/<name> answered 500 when a card's metrics was null."""
    card_path = registry.version_dir(MODEL, 2) / "model.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "metrics": None}))
    response = client.get(f"/models/{MODEL}")
    assert response.status_code == 200
    assert response.get_json()["versions"][1]["test_accuracy"] is None


def test_errors_never_show_server_paths(client, registry):
    """Issue 12.6: error bodies showed the registry's absolute path to anonymous clients."""
    (registry.root / MODEL / "aliases.json").write_text("{broken")
    for response in (client.get(f"/models/{MODEL}"), client.get("/models/nope")):
        text = response.get_data(as_text=True)
        assert response.status_code in (404, 503), text
        assert str(registry.root) not in text
    assert (
        "fashion-mnist/aliases.json"
        in client.get(f"/models/{MODEL}").get_json()["error"]["message"]
    )


@pytest.mark.parametrize("alias", ["0", "1e3"])
def test_aliases_that_look_like_numbers_are_refused(client, alias):
    response = client.put(f"/models/{MODEL}/aliases/{alias}", json={"version": 2}, headers=ADMIN)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_name"


def test_the_version_endpoint_shows_the_provider_options(client):
    serving = client.get(f"/models/{MODEL}/versions/1").get_json()["serving"]
    assert serving["provider_options"] == {"CPUExecutionProvider": {}}


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
