"""POST /predict and /models/<name>/predict through Flask's test client: answers and 4xx."""

import numpy as np
import pytest

from service.contract import CLASS_NAMES
from tests.conftest import MODEL
from tests.http.checks import assert_error, upload
from tests.images import dark_images, png


def test_predict_multipart_returns_all_ten_probabilities_in_class_order(client, app):
    pixels = dark_images(1)[0]
    response = client.post("/predict", data=upload(png(pixels)))
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == {"name": MODEL, "version": 1, "alias": "production"}
    (prediction,) = body["predictions"]
    assert list(prediction["probabilities"]) == list(CLASS_NAMES)
    core = app.extensions["fashion_serve"]
    expected = core.model()[0].model.run(pixels[None].astype(np.float32) / 255)[0]
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
