"""The Flask layer through its test client: shapes, status codes and JSON errors for bad input."""

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.contract import CLASS_NAMES
from service.http import create_app
from service.registry import Registry
from service.runtime import CPU, OnnxModel
from service.settings import Settings
from tests.conftest import MODEL
from tests.test_inference import dark_images, png
from training import data

AUTH = {"Authorization": "Bearer s3cret-token"}
REPO = Path(__file__).resolve().parents[1]


def upload(*images: bytes, field: str = "image") -> dict:
    return {field: [(io.BytesIO(data), f"{i}.png") for i, data in enumerate(images)]}


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


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


def test_multipart_with_an_unparsable_field_name_is_a_400(client):
    """Found by schemathesis: Werkzeug named such a part None, which once crashed the message."""
    body = (
        b'--b0\r\nContent-Disposition: form-data; name="x\\"\r\n\r\nv\r\n'  # name ends in \
        b'--b0\r\nContent-Disposition: form-data; name="y"\r\n\r\nw\r\n--b0--\r\n'
    )
    response = client.post("/predict", data=body, content_type="multipart/form-data; boundary=b0")
    error = assert_error(response, 400, "bad_request")
    assert error["message"] == "expected multipart field 'image', got 'x\\\\', 'y'"


def test_malformed_multipart_bodies_get_clear_4xx(client):
    image = png(dark_images(1)[0])
    part = b'--b0\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'

    def post(body: bytes, content_type: str = "multipart/form-data; boundary=b0"):
        return client.post("/predict", data=body, content_type=content_type)

    no_boundary = post(part + image + b"\r\n--b0--\r\n", "multipart/form-data")
    assert "boundary" in assert_error(no_boundary, 400, "bad_request")["message"]
    truncated = post(part + image[:20])  # the closing boundary never comes
    assert "malformed multipart" in assert_error(truncated, 400, "bad_request")["message"]
    assert_error(post(b"not multipart at all"), 400, "bad_request")
    latin1_name = b'--b0\r\nContent-Disposition: form-data; name="\xe9"\r\n\r\nx\r\n--b0--\r\n'
    message = assert_error(post(latin1_name), 400, "bad_request")["message"]
    assert message == "malformed multipart body: Segment header failed to decode"
    # A text field named image (curl -F image=hello) is an image that does not decode.
    text_field = b'--b0\r\nContent-Disposition: form-data; name="image"\r\n\r\nhello\r\n--b0--\r\n'
    assert_error(post(text_field), 415)
    # Parts around the images are ignored; the images keep their order.
    caption = b'--b0\r\nContent-Disposition: form-data; name="caption"\r\n\r\nshoe\r\n'
    mixed = post(caption + part + image + b"\r\n" + caption + b"--b0--\r\n")
    assert mixed.status_code == 200
    assert len(mixed.get_json()["predictions"]) == 1


def test_multipart_parts_are_bounded(settings):
    from dataclasses import replace

    app = create_app(replace(settings, max_batch=2))
    client = app.test_client()
    field = b'--b0\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n'
    body = field * 100 + b"--b0--\r\n"
    response = client.post("/predict", data=body, content_type="multipart/form-data; boundary=b0")
    assert "malformed multipart" in assert_error(response, 400, "bad_request")["message"]
    image = png(dark_images(1)[0])
    response = client.post("/predict", data=upload(*[image] * 100))
    assert_error(response, 413, "batch_too_large")
    app.extensions["fashion_serve"].close()


def test_too_many_images_and_too_many_bytes(settings):
    from dataclasses import replace

    app = create_app(replace(settings, max_batch=2, max_upload_bytes=4096))
    client = app.test_client()
    image = png(dark_images(1)[0])
    assert_error(client.post("/predict", data=upload(image, image, image)), 413, "batch_too_large")
    big = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), np.uint8)).save(
        big, "PNG"
    )
    assert_error(client.post("/predict", data=big.getvalue(), content_type="image/png"), 413)
    app.extensions["fashion_serve"].close()


def test_unknown_route_and_method_are_json(client):
    assert_error(client.get("/nope"), 404)
    assert_error(client.get("/predict"), 405)


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
    for body in ({"version": "2"}, {"version": 0}, {"version": 1.5}, {"version": True}, [], None):
        assert_error(client.put(url, json=body, headers=AUTH), 400)
    # JSON has one number type: 2.0 is the integer 2 (the OpenAPI document's "integer" too).
    assert client.put(url, json={"version": 2.0}, headers=AUTH).get_json()["version"] == 2
    assert_error(
        client.put(f"/models/{MODEL}/aliases/Bad!", json={"version": 1}, headers=AUTH), 400
    )


def test_management_is_read_only_without_a_token(settings):
    from dataclasses import replace

    app = create_app(replace(settings, admin_token=None))
    response = app.test_client().put(
        f"/models/{MODEL}/aliases/production", json={"version": 2}, headers=AUTH
    )
    assert_error(response, 403, "read_only")
    app.extensions["fashion_serve"].close()


def test_health_and_readiness(client, settings, tmp_path):
    from dataclasses import replace

    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["ready"] is True
    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app(replace(settings, model_dir=empty))
    not_ready = app.test_client().get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["refused"]
    assert_error(
        app.test_client().post("/predict", data=upload(png(dark_images(1)[0]))), 503, "not_ready"
    )
    app.extensions["fashion_serve"].close()


@pytest.mark.skipif(not data.DEFAULT_DIR.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_the_shipped_registry_serves_the_cnn_by_default_and_the_mlp_as_version_1(tmp_path):
    shutil.copytree(REPO / "models", tmp_path / "models")
    registry = Registry(tmp_path / "models")
    test_set = data.load(data.DEFAULT_DIR)
    pixels, labels = test_set.test_images[:200], test_set.test_labels[:200]
    app = create_app(Settings(model_dir=registry.root))
    try:
        client = app.test_client()
        for query, version in (("", 2), ("?version=1", 1)):
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
    finally:
        app.extensions["fashion_serve"].close()
