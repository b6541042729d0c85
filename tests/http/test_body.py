"""Request bodies read while they stream (service/http/body.py), through Flask's test client."""

import gzip
import json
import tracemalloc
import zlib
from dataclasses import replace

import numpy as np
import pytest

from service.http import create_app
from tests.conftest import MODEL
from tests.images import dark_images, png

INFER = f"/v2/models/{MODEL}/infer"
LIMIT = 1 << 20  # 1 MiB: the same code paths as the default 16 MiB, at a test's cost


@pytest.fixture
def small(settings):
    """An app whose body limit is LIMIT."""
    app = create_app(replace(settings, max_upload_bytes=LIMIT))
    yield app.test_client()
    app.extensions["fashion_serve"].close()


def chunked(client, path: str, body: bytes, **headers: str):
    """POST without Content-Length, as a chunked request reaches the app under gunicorn."""
    return client.post(
        path,
        data=body,
        headers={"Transfer-Encoding": "chunked", **headers},
        environ_overrides={"wsgi.input_terminated": True},
    )


def zeros_request(values: int) -> bytes:
    """A v2 JSON request whose data holds ``values`` zeros: one image's shape, far more data."""
    head = b'{"inputs":[{"name":"image","datatype":"FP32","shape":[1,28,28],"data":['
    return head + b"0," * (values - 1) + b"0]}]}"


def test_a_chunked_body_over_the_limit_is_413_not_cut(small):
    """Issue 12.6: chunked bodies over the limit were cut to it and answered 422 or 400."""
    image = png(dark_images(1)[0])
    padded = image + b"\0" * LIMIT
    response = chunked(small, "/predict", padded, **{"Content-Type": "image/png"})
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "payload_too_large"
    response = chunked(small, INFER, b" " * (LIMIT + 1))
    assert response.status_code == 413
    ok = chunked(small, "/predict", image, **{"Content-Type": "image/png"})
    assert ok.status_code == 200


def test_a_gzip_bomb_gets_413_without_being_inflated_whole(small):
    """Issue 12.3: inflating stops one byte past the limit, never at the bomb's full size."""
    bomb = gzip.compress(b"\0" * (64 * LIMIT), 9)  # 64 MiB inflated
    assert len(bomb) < LIMIT
    tracemalloc.start()
    try:
        response = small.post(INFER, data=bomb, headers={"Content-Encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413, response.get_data(as_text=True)
    assert "decompressed body exceeds" in response.get_json()["error"]
    assert peak < 8 * LIMIT  # a whole inflation would take 64 MiB


def test_a_json_body_with_more_values_than_a_batch_is_413_as_it_inflates(settings):
    """Issue 12.3: 16 KB of gzip inflating to a huge array once cost 1.3 s of CPU per request."""
    app = create_app(replace(settings, max_batch=2))
    client = app.test_client()
    try:
        body = zeros_request(4 * 784)  # under the byte limit, over two images' values (+ slack)
        for encoding, packed in (("gzip", gzip.compress(body)), ("identity", body)):
            response = client.post(INFER, data=packed, headers={"Content-Encoding": encoding})
            assert response.status_code == 413, response.get_data(as_text=True)
            assert "more values than 2 images" in response.get_json()["error"]
        # The binary section after the JSON header is not JSON: its bytes are not counted.
        raw = np.full((2, 28, 28), ord(","), np.uint8).tobytes()
        header = json.dumps(
            {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [2, 28, 28],
                         "parameters": {"binary_data_size": len(raw)}}]}
        ).encode()  # fmt: skip
        response = client.post(
            INFER,
            data=header + raw,
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
    finally:
        app.extensions["fashion_serve"].close()


def test_deflate_bodies_and_broken_ones(client):
    body = json.dumps(
        {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 28, 28],
                     "data": dark_images(1)[0].tolist()}]}
    ).encode()  # fmt: skip
    packed = zlib.compress(body)
    assert (
        client.post(INFER, data=packed, headers={"Content-Encoding": "deflate"}).status_code == 200
    )
    truncated = gzip.compress(body)[:-20]
    response = client.post(INFER, data=truncated, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "truncated" in response.get_json()["error"]


def test_every_body_reader_takes_gzip(client):
    image = png(dark_images(1)[0])
    response = client.post(
        "/predict",
        data=gzip.compress(image),
        headers={"Content-Type": "image/png", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    response = client.post(
        f"/v1/models/{MODEL}:predict",
        data=gzip.compress(json.dumps({"instances": [dark_images(1)[0].tolist()]}).encode()),
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
