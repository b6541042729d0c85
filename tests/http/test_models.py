"""The registry over HTTP: model lists, cards, promoting and rolling back aliases, damage."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from service.http import create_app
from tests.conftest import MODEL
from tests.http.checks import AUTH, assert_error, upload
from tests.images import dark_images, png


def test_models_listing_and_cards(client, app):
    models = client.get("/models").get_json()["models"]
    assert models == [
        {
            "name": MODEL,
            "versions": [1, 2],
            "aliases": {"production": 1, "staging": 2},
            "default": True,
        }
    ]
    model = client.get(f"/models/{MODEL}").get_json()
    assert [v["version"] for v in model["versions"]] == [1, 2]
    card = client.get(f"/models/{MODEL}/versions/1").get_json()
    assert card["version"] == 1
    assert len(card["sha256"]) == 64
    assert card["serving"]["loaded"] is True
    assert card["serving"]["providers"] == app.extensions["fashion_serve"].providers
    assert_error(client.get(f"/models/{MODEL}/versions/9"), 404, "version_not_found")
    assert_error(client.get(f"/models/{MODEL}/versions/x"), 400)
    assert_error(client.get("/models/nope"), 404, "model_not_found")


def test_alias_management_needs_the_token(client):
    url = f"/models/{MODEL}/aliases/production"
    assert_error(client.put(url, json={"version": 2}), 401, "unauthorized")
    wrong = {"Authorization": "Bearer not-the-token"}
    assert_error(client.put(url, json={"version": 2}, headers=wrong), 401)
    assert_error(client.delete(url, headers=wrong), 401)
    assert (
        client.post("/predict", data=upload(png(dark_images(1)[0]))).get_json()["model"]["version"]
        == 1
    )


def test_promote_and_rollback_over_http(client):
    url = f"/models/{MODEL}/aliases/production"
    image = png(dark_images(1)[0])
    moved = client.put(url, json={"version": 2}, headers=AUTH)
    assert moved.status_code == 200
    assert moved.get_json() == {"model": MODEL, "alias": "production", "version": 2, "previous": 1}
    assert client.post("/predict", data=upload(image)).get_json()["model"]["version"] == 2
    back = client.delete(url, headers=AUTH)
    assert back.get_json()["version"] == 1
    assert client.post("/predict", data=upload(image)).get_json()["model"]["version"] == 1
    assert_error(client.delete(url, headers=AUTH), 409, "no_alias_history")
    assert_error(client.put(url, json={"version": 9}, headers=AUTH), 404)
    # JSON has one number type: 2.0 is the integer 2 (the OpenAPI document's "integer" too).
    assert client.put(url, json={"version": 2.0}, headers=AUTH).get_json()["version"] == 2
    assert_error(
        client.put(f"/models/{MODEL}/aliases/Bad!", json={"version": 1}, headers=AUTH), 400
    )


def test_management_is_read_only_without_a_token(settings):
    app = create_app(replace(settings, admin_token=None))
    response = app.test_client().put(
        f"/models/{MODEL}/aliases/production", json={"version": 2}, headers=AUTH
    )
    assert_error(response, 403, "read_only")
    app.extensions["fashion_serve"].close()


def test_delete_rolls_back_when_the_current_target_is_gone(client, registry):
    """Issue 12.2: DELETE …/aliases/production answered 404 once its target was deleted."""
    moved = client.put(f"/models/{MODEL}/aliases/production", json={"version": 2}, headers=AUTH)
    assert moved.status_code == 200
    shutil.rmtree(registry.version_dir(MODEL, 2))
    response = client.delete(f"/models/{MODEL}/aliases/production", headers=AUTH)
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
    response = client.put(f"/models/{MODEL}/aliases/{alias}", json={"version": 2}, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_name"


def test_the_version_endpoint_shows_how_the_version_runs(client):
    serving = client.get(f"/models/{MODEL}/versions/1").get_json()["serving"]
    assert serving["provider_options"] == {"CPUExecutionProvider": {}}
    assert serving["loaded"]
    assert serving["unfused_int8"] is False  # a float32 graph


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


def test_a_calibrated_versions_reliability_diagram_is_served(client, registry):
    data = png(np.eye(28) * 255)
    (registry.version_dir("fashion-mnist", 1) / "reliability.png").write_bytes(data)

    response = client.get("/models/fashion-mnist/versions/1/files/reliability.png")

    assert response.status_code == 200
    assert response.data == data
    assert "reliability.png" in client.get("/models/fashion-mnist/versions/1").get_json()["files"]


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


@pytest.mark.parametrize(
    "body", [{"version": "2"}, {"version": 0}, {"version": 1.5}, {"version": True}, [], None]
)
def test_promotion_needs_a_positive_integer_version(client, body):
    url = f"/models/{MODEL}/aliases/production"
    assert_error(client.put(url, json=body, headers=AUTH), 400)
