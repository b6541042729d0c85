"""TF Serving's REST API (/v1/models) through Flask's test client: row, columnar, b64, errors."""

import base64
import json

import numpy as np
import pytest

from tests.conftest import MODEL
from tests.http.checks import assert_plain_error, model_output
from tests.images import dark_images, png

OK_STATUS = {"error_code": "OK", "error_message": ""}


def images(count: int = 2) -> np.ndarray:
    return np.stack(dark_images(count)).astype(np.float32) / 255


def test_instances_give_predictions_equal_to_the_model(client, app):
    batch = images()
    response = client.post(f"/v1/models/{MODEL}:predict", json={"instances": batch.tolist()})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Model-Version"] == f"{MODEL}:1"
    got = np.array(response.get_json()["predictions"], dtype=np.float32)
    np.testing.assert_array_equal(got, model_output(app, batch))


def test_named_instances_columnar_inputs_versions_and_labels(client, app):
    batch = images()
    named = {"instances": [{"image": image} for image in batch.tolist()]}
    by_version = client.post(f"/v1/models/{MODEL}/versions/2:predict", json=named)
    np.testing.assert_array_equal(
        np.array(by_version.get_json()["predictions"], np.float32), model_output(app, batch, 2)
    )
    by_label = client.post(
        f"/v1/models/{MODEL}/labels/staging:predict", json={"inputs": {"image": batch.tolist()}}
    )
    assert by_label.headers["X-Model-Version"] == f"{MODEL}:2"
    np.testing.assert_array_equal(
        np.array(by_label.get_json()["outputs"], np.float32), model_output(app, batch, 2)
    )
    bare = client.post(f"/v1/models/{MODEL}:predict", json={"inputs": batch.tolist()})
    assert len(bare.get_json()["outputs"]) == 2


@pytest.mark.parametrize("named", [False, True], ids=["bare", "named"])
def test_base64_images_are_decoded_like_uploads(client, app, named):
    pixels = dark_images(1)[0]
    instance = {"b64": base64.b64encode(png(pixels)).decode()}
    instance = {"image": instance} if named else instance
    body = client.post(f"/v1/models/{MODEL}:predict", json={"instances": [instance]})
    got = np.array(body.get_json()["predictions"], np.float32)
    np.testing.assert_allclose(
        got, model_output(app, pixels[None].astype(np.float32) / 255), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("path", "version"),
    [
        (f"/v1/models/{MODEL}", "1"),
        (f"/v1/models/{MODEL}/versions/2", "2"),
        (f"/v1/models/{MODEL}/labels/staging", "2"),
    ],
)
def test_model_status_like_tf_serving(client, path, version):
    body = client.get(path).get_json()
    assert body == {
        "model_version_status": [{"version": version, "state": "AVAILABLE", "status": OK_STATUS}]
    }


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        json.dumps({}).encode(),
        json.dumps({"instances": [], "inputs": []}).encode(),
        json.dumps({"instances": []}).encode(),
        json.dumps({"instances": [[1, 2, 3]]}).encode(),
        json.dumps({"instances": [["x"] * 28] * 28}).encode(),
        json.dumps({"instances": [{"pixels": [[0] * 28] * 28}]}).encode(),
        json.dumps({"instances": [{"b64": "***"}]}).encode(),
        json.dumps({"instances": [{"b64": 7}]}).encode(),
        json.dumps({"instances": [{"b64": "aGk="}, [[0] * 28] * 28]}).encode(),
        json.dumps({"inputs": {"image": []}}).encode(),
        # Found by schemathesis: objects that are not {"b64"} in "inputs" once raised a KeyError.
        json.dumps({"inputs": [{"U": 1}]}).encode(),
        json.dumps({"inputs": [{"b64": "aGk=", "extra": 1}]}).encode(),
        json.dumps({"signature_name": "other", "instances": [[[0] * 28] * 28]}).encode(),
    ],
)
def test_bad_requests_are_400_with_a_plain_error(client, body):
    assert_plain_error(client.post(f"/v1/models/{MODEL}:predict", data=body), 400)


def test_unknown_targets_and_undecodable_images(client):
    body = {"instances": [[[0.0] * 28] * 28]}
    assert_plain_error(client.post("/v1/models/nope:predict", json=body), 404)
    assert_plain_error(client.post(f"/v1/models/{MODEL}/versions/9:predict", json=body), 404)
    assert_plain_error(client.post(f"/v1/models/{MODEL}/labels/canary:predict", json=body), 404)
    assert_plain_error(client.post(f"/v1/models/{MODEL}/versions/0:predict", json=body), 400)
    assert_plain_error(client.get("/v1/models/nope"), 404)
    assert_plain_error(client.get(f"/v1/models/{MODEL}/versions/9"), 404)
    text = base64.b64encode(b"plain text").decode()
    assert_plain_error(
        client.post(f"/v1/models/{MODEL}:predict", json={"instances": [{"b64": text}]}), 415
    )


@pytest.mark.parametrize(
    "path",
    [f"{MODEL}:predict", f"{MODEL}/versions/1:predict", f"{MODEL}/labels/production:predict"],
)
def test_predict_urls_allow_only_post(client, path):
    """Found by schemathesis: the GET status routes once claimed these URLs as model names."""
    allow = client.options(f"/v1/models/{path}").headers["Allow"]
    assert set(allow.split(", ")) == {"POST", "OPTIONS"}  # Werkzeug's order follows a set
    assert_plain_error(client.get(f"/v1/models/{path}"), 405)
