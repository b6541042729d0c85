"""POST /models/<name>/activations on the shipped version 1: same answer as /predict, and more."""

import io
import json
from pathlib import Path

import pytest

from service.http import create_app
from service.settings import Settings
from tests.conftest import MODEL
from tests.http.checks import assert_error, upload
from tests.images import checkerboard, dark_images, png
from tests.shipped import SHIPPED, copy_shipped

GALLERY = Path(__file__).resolve().parents[2] / "service/http/static/ui/gallery"
# The shipped registry moves production on as better versions land: read it, never assume it.
PRODUCTION = json.loads((SHIPPED / "fashion-mnist" / "aliases.json").read_text())["production"]


@pytest.fixture
def shipped_client(tmp_path):
    root = tmp_path / "models"
    copy_shipped(root)
    app = create_app(Settings(model_dir=root, reload_interval=60))
    yield app.test_client()
    app.extensions["fashion_serve"].close()


def test_activations_of_version_1_agree_with_predict(shipped_client):
    data = png(dark_images(1, seed=3)[0])
    response = shipped_client.post("/models/fashion-mnist/activations?version=1", data=upload(data))
    assert response.status_code == 200
    assert response.headers["X-Model-Version"] == "fashion-mnist:1"
    body = response.get_json()
    predicted = shipped_client.post("/predict?version=1", data=upload(data)).get_json()
    expected = predicted["predictions"][0]
    assert body["prediction"]["label"] == expected["label"]
    for name, p in expected["probabilities"].items():
        assert body["prediction"]["probabilities"][name] == pytest.approx(p, abs=1e-6)
    (layer,) = body["layers"]
    assert (layer["kind"], layer["shape"], layer["op"]) == ("dense", [128], "Relu")
    assert body["readout"]["class_id"] == expected["class_id"]
    assert len(body["readout"]["contributions"]) == 128


def test_activations_take_a_raw_body_and_the_default_alias(shipped_client):
    response = shipped_client.post(
        "/models/fashion-mnist/activations",
        data=png(dark_images(1)[0]),
        content_type="image/png",
    )
    assert response.status_code == 200
    assert response.get_json()["model"] == {
        "name": "fashion-mnist",
        "version": PRODUCTION,
        "alias": "production",
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/models/fashion-mnist/activations", "two", 400, "bad_request"),
        ("/models/fashion-mnist/activations", "pdf", 415, "unsupported_image_type"),
        ("/models/fashion-mnist/activations?version=99", "one", 404, "version_not_found"),
        ("/models/no-such-model/activations", "one", 404, "model_not_found"),
        ("/models/fashion-mnist/activations?version=x", "one", 400, "bad_request"),
    ],
)
def test_activations_refuse_bad_requests_clearly(shipped_client, path, body, status, code):
    image = png(dark_images(1)[0])
    bodies = {
        "one": upload(image),
        "two": upload(image, image),
        "pdf": {"image": [(io.BytesIO(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "a.pdf")]},
    }
    assert_error(shipped_client.post(path, data=bodies[body]), status, code)


@pytest.mark.parametrize("mode", ["photo", "dataset"])
def test_activations_read_the_image_in_the_mode_asked(shipped_client, mode):
    photo = next(GALLERY.glob("photo-*.jpg")).read_bytes()
    query = f"version=1&mode={mode}"
    explained = shipped_client.post(
        f"/models/fashion-mnist/activations?{query}", data=upload(photo)
    )
    predicted = shipped_client.post(f"/predict?{query}", data=upload(photo)).get_json()
    expected = predicted["predictions"][0]["probabilities"]
    got = explained.get_json()["prediction"]["probabilities"]
    assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("picture", ["clothing", "checkerboard"])
def test_a_judging_versions_activations_carry_the_same_judgement_as_predict(
    client, judging, novelty_reference, picture
):
    pixels = novelty_reference.clothing() if picture == "clothing" else checkerboard()
    image = upload(png(pixels))
    inside = client.post(f"/models/{MODEL}/activations?version={judging}", data=image)
    assert inside.status_code == 200, inside.get_data(as_text=True)
    predicted = client.post(f"/models/{MODEL}/predict?version={judging}", data=upload(png(pixels)))
    (expected,) = predicted.get_json()["predictions"]
    assert inside.get_json()["prediction"] == expected
    assert expected["in_distribution"] is (picture == "clothing")
