"""POST /preprocess: the model's input as PNG or JSON, the same pixels /predict classifies."""

import io

import numpy as np
import pytest
from PIL import Image

from service.preprocess import preprocess
from tests.http.checks import assert_error, upload
from tests.images import dark_images, png


def photo(ground: int = 235) -> bytes:
    """A JPEG product shot: a dark garment off-centre on a light ground."""
    image = Image.new("RGB", (300, 220), (ground, ground, ground))
    image.paste((40, 30, 90), (40, 30, 150, 200))
    image.paste((90, 80, 140), (40, 80, 150, 100))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def blank() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (180, 180, 180)).save(buffer, "PNG")
    return buffer.getvalue()


def test_one_image_answers_the_models_input_as_a_png(client):
    data = photo()
    response = client.post("/preprocess", data=data, content_type="image/jpeg")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["X-Preprocess-Mode"] == "photo"
    shown = Image.open(io.BytesIO(response.get_data()))
    assert (shown.mode, shown.size) == ("L", (28, 28))
    expected = preprocess([data]).images[0]
    assert np.array_equal(np.asarray(shown, dtype=np.float32) / np.float32(255), expected)


@pytest.mark.parametrize(
    ("query", "headers"),
    [("?format=json", {}), ("?format=JSON", {}), ("", {"Accept": "application/json"})],
)
def test_json_gives_the_exact_float32_pixels(client, query, headers):
    data = photo()
    response = client.post(f"/preprocess{query}", data=upload(data), headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    (image,) = response.get_json()["images"]
    assert (image["width"], image["height"], image["mode"]) == (28, 28, "photo")
    pixels = np.array(image["pixels"], dtype=np.float32)
    assert np.array_equal(pixels, preprocess([data]).images[0])


def test_a_batch_answers_json_with_each_images_mode(client):
    dataset_image = png(dark_images(1)[0])
    response = client.post("/preprocess", data=upload(dataset_image, photo()))
    images = response.get_json()["images"]
    assert [image["mode"] for image in images] == ["dataset", "photo"]
    assert np.array_equal(np.rint(np.array(images[0]["pixels"]) * 255), dark_images(1)[0])


def test_mode_and_invert_are_applied(client):
    data = photo()
    as_dataset = client.post("/preprocess?mode=dataset&format=json", data=upload(data))
    (image,) = as_dataset.get_json()["images"]
    assert image["mode"] == "dataset"
    expected = preprocess([data], mode="dataset").images[0]
    assert np.array_equal(np.array(image["pixels"], dtype=np.float32), expected)
    # A light object on black, told it is darker than its ground: there is no such object.
    light_on_dark = png(np.kron(dark_images(1)[0], np.ones((3, 3), dtype=np.uint8)))
    assert client.post("/preprocess", data=upload(light_on_dark)).status_code == 200
    assert_error(client.post("/preprocess?invert=true", data=upload(light_on_dark)), 422)


def test_what_preprocess_shows_is_what_predict_classifies(client, app):
    data = photo(ground=170)
    shown = client.post("/preprocess?format=json", data=upload(data)).get_json()["images"][0]
    pixels = np.array(shown["pixels"], dtype=np.float32)[None]
    expected = app.extensions["fashion_serve"].data_plane.model()[0].model.run(pixels)[0]
    body = client.post("/predict", data=upload(data)).get_json()
    got = list(body["predictions"][0]["probabilities"].values())
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    as_dataset = client.post("/predict?mode=dataset", data=upload(data)).get_json()
    assert as_dataset["predictions"][0]["probabilities"] != body["predictions"][0]["probabilities"]


@pytest.mark.parametrize("path", ["/preprocess", "/predict", "/models/fashion-mnist/predict"])
def test_a_photo_of_nothing_is_a_422_not_a_guess(client, path):
    error = assert_error(client.post(path, data=upload(blank())), 422, "no_object_found")
    assert "no object found" in error["message"]
    assert client.post(f"{path}?mode=dataset", data=upload(blank())).status_code == 200


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?mode=raw", "mode must be one of auto, photo, dataset"),
        ("?invert=maybe", "invert must be one of auto, true, false"),
        ("?format=gif", "format must be one of png, json"),
    ],
)
def test_bad_options_are_a_400(client, query, message):
    error = assert_error(client.post(f"/preprocess{query}", data=upload(photo())), 400)
    assert message in error["message"]


def test_a_batch_cannot_be_one_png(client):
    response = client.post("/preprocess?format=png", data=upload(photo(), photo()))
    assert "batch is answered as JSON" in assert_error(response, 400, "bad_request")["message"]


def test_bad_uploads_get_the_same_errors_as_predict(client):
    assert_error(client.post("/preprocess"), 400)
    assert_error(client.post("/preprocess", data=b"text", content_type="text/plain"), 415)
    assert_error(client.post("/preprocess", data=upload(b"not an image")), 415)
