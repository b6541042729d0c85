"""POST /predict and /models/<name>/predict through Flask's test client: answers and 4xx."""

from pathlib import Path

import numpy as np
import pytest

from service.contract import CLASS_NAMES
from service.http import create_app
from service.registry import Registry
from service.runtime import CPU, OnnxModel
from service.settings import Settings
from tests.conftest import MODEL
from tests.http.checks import assert_error, upload
from tests.images import checkerboard, dark_images, png
from tests.shipped import copy_shipped
from training import data

REPO = Path(__file__).resolve().parents[2]


def test_predict_multipart_returns_all_ten_probabilities_in_class_order(client, app):
    pixels = dark_images(1)[0]
    response = client.post("/predict", data=upload(png(pixels)))
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == {"name": MODEL, "version": 1, "alias": "production"}
    (prediction,) = body["predictions"]
    assert list(prediction["probabilities"]) == list(CLASS_NAMES)
    core = app.extensions["fashion_serve"]
    expected = core.data_plane.model()[0].model.run(pixels[None].astype(np.float32) / 255)[0]
    np.testing.assert_allclose(list(prediction["probabilities"].values()), expected, rtol=1e-6)
    assert prediction["class_id"] == int(expected.argmax())
    assert response.headers["X-Model-Version"] == f"{MODEL}:1"


def test_raw_image_body_equals_multipart(client):
    image = png(dark_images(1, seed=3)[0])
    raw = client.post("/predict", data=image, content_type="image/png").get_json()
    form = client.post("/predict", data=upload(image)).get_json()
    assert raw == form


def test_batch_of_several_fields(client):
    images = [png(p) for p in dark_images(4)]
    body = client.post("/predict", data=upload(*images)).get_json()
    assert len(body["predictions"]) == 4


def test_named_model_with_version_and_alias(client):
    image = png(dark_images(1)[0])
    by_version = client.post(f"/models/{MODEL}/predict?version=2", data=upload(image))
    assert by_version.get_json()["model"] == {"name": MODEL, "version": 2, "alias": None}
    by_alias = client.post(f"/models/{MODEL}/predict?alias=staging", data=upload(image))
    assert by_alias.get_json()["model"] == {"name": MODEL, "version": 2, "alias": "staging"}


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/models/nope/predict", 404, "model_not_found"),
        (f"/models/{MODEL}/predict?version=7", 404, "version_not_found"),
        (f"/models/{MODEL}/predict?alias=canary", 404, "alias_not_found"),
        (f"/models/{MODEL}/predict?version=abc", 400, "bad_request"),
        (f"/models/{MODEL}/predict?version=0", 400, "bad_request"),
        (f"/models/{MODEL}/predict?version=1&alias=production", 400, "bad_request"),
        (f"/models/{MODEL}/predict?alias=..", 400, "invalid_name"),
        ("/predict?invert=sometimes", 400, "bad_request"),
        ("/predict?mode=raw", 400, "bad_request"),
        (f"/models/{MODEL}/predict?mode=photos", 400, "bad_request"),
        ("/models/UPPER/predict", 400, "invalid_name"),
        ("/predict?unknown=ignore", 400, "bad_request"),
    ],
)
def test_bad_targets_and_query_values(client, path, status, code):
    assert_error(client.post(path, data=upload(png(dark_images(1)[0]))), status, code)


def test_bad_uploads_get_clear_4xx(client, app):
    text = b"just some text, not an image"
    cases = [
        (client.post("/predict"), 400),
        (client.post("/predict", data=b"", content_type="image/png"), 400),
        (client.post("/predict", data=upload(png(dark_images(1)[0]), field="file")), 400),
        (client.post("/predict", data=upload(text)), 415),
        (client.post("/predict", data=text, content_type="text/plain"), 415),
        (client.post("/predict", json={"image": "x"}), 415),
        (
            client.post(
                "/predict",
                data=b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                content_type="image/svg+xml",
            ),
            415,
        ),
    ]
    for response, status in cases:
        assert_error(response, status)


@pytest.mark.skipif(not data.DEFAULT_DIR.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_the_shipped_registry_serves_production_by_default_and_the_mlp_as_version_1(tmp_path):
    copy_shipped(tmp_path / "models")
    registry = Registry(tmp_path / "models")
    production = registry.aliases(MODEL)["production"]
    assert production >= 3  # the CNN trained for real pictures, or a later one
    test_set = data.load(data.DEFAULT_DIR)
    pixels, labels = test_set.test_images[:200], test_set.test_labels[:200]
    app = create_app(Settings(model_dir=registry.root))
    try:
        client = app.test_client()
        for query, version in (("", production), ("?version=2", 2), ("?version=1", 1)):
            response = client.post(
                f"/models/{MODEL}/predict{query}", data=upload(*[png(p) for p in pixels])
            )
            assert response.status_code == 200, response.get_data(as_text=True)
            body = response.get_json()
            assert body["model"]["version"] == version
            served = np.array([list(p["probabilities"].values()) for p in body["predictions"]])
            model = OnnxModel(registry.read_verified(MODEL, version), [CPU])
            expected = model.run(pixels.astype(np.float32) / 255)
            np.testing.assert_allclose(served, expected, atol=1e-6)
            assert (served.argmax(1) == labels).mean() > 0.85
            # Versions 1-3 do not judge their inputs: null fields, as the contract says.
            judges = "novelty" in registry.card(MODEL, version)
            for prediction in body["predictions"]:
                assert (prediction["in_distribution"] is None) is not judges
                assert (prediction["novelty"] is None) is not judges
    finally:
        app.extensions["fashion_serve"].close()


def test_a_judging_version_passes_clothing_and_flags_a_checkerboard(
    client, judging, novelty_reference
):
    clothing, board = novelty_reference.clothing(), checkerboard()
    url = f"/models/{MODEL}/predict?version={judging}"
    response = client.post(url, data=upload(png(clothing), png(board), png(clothing)))
    assert response.status_code == 200, response.get_data(as_text=True)
    predictions = response.get_json()["predictions"]
    assert [p["in_distribution"] for p in predictions] == [True, False, True]
    expected = novelty_reference.novelty(np.stack([clothing, board, clothing]))
    np.testing.assert_allclose([p["novelty"] for p in predictions], expected, rtol=1e-5)
    assert predictions[1]["novelty"] > novelty_reference.threshold  # flagged, still answered
    assert sum(predictions[1]["probabilities"].values()) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("unknown", ["", "&unknown=flag", "&unknown=FLAG"])
def test_flag_is_the_default_and_answers_every_image(client, judging, unknown):
    url = f"/models/{MODEL}/predict?version={judging}{unknown}"
    response = client.post(url, data=upload(png(checkerboard())))
    assert response.status_code == 200
    assert response.get_json()["predictions"][0]["in_distribution"] is False


def test_reject_answers_422_not_clothing_naming_the_image_and_the_version(
    client, judging, novelty_reference
):
    url = f"/models/{MODEL}/predict?version={judging}&unknown=reject"
    clothing = png(novelty_reference.clothing())
    error = assert_error(
        client.post(url, data=upload(clothing, png(checkerboard()))), 422, "not_clothing"
    )
    assert f"image 2 of 2 does not look like clothing to version {judging}" in error["message"]
    accepted = client.post(url, data=upload(clothing, clothing))
    assert accepted.status_code == 200
    assert [p["in_distribution"] for p in accepted.get_json()["predictions"]] == [True, True]


def test_a_version_without_a_judgement_answers_null_fields_and_never_rejects(client):
    response = client.post("/predict?unknown=reject", data=upload(png(checkerboard())))
    assert response.status_code == 200
    (prediction,) = response.get_json()["predictions"]
    assert prediction["in_distribution"] is None
    assert prediction["novelty"] is None
