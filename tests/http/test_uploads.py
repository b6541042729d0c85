"""Uploads as every endpoint reads them: multipart forms, raw bodies, and their limits."""

import io
from dataclasses import replace

import numpy as np
from PIL import Image

from service.http import create_app
from tests.http.checks import assert_error, upload
from tests.images import dark_images, png


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


def test_too_many_bytes(settings):
    # The batch limit's home is tests/test_data_plane.py; here, the upload's own limit.
    app = create_app(replace(settings, max_upload_bytes=4096))
    client = app.test_client()
    big = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), np.uint8)).save(
        big, "PNG"
    )
    assert_error(client.post("/predict", data=big.getvalue(), content_type="image/png"), 413)
    app.extensions["fashion_serve"].close()
