"""The app's one JSON encoder and decoder: what jsonify writes and request.get_json reads."""

import numpy as np
from flask import jsonify, request

from service.http.json_provider import encode


def test_jsonify_writes_what_encode_writes_keys_in_order(app):
    value = {"z": 1, "a": [0.1, 1e-05], "text": "28×28"}
    with app.test_request_context():
        response = jsonify(value)
    assert response.get_data() == encode(value)
    assert response.get_data().startswith(b'{"z":1,"a":[0.1,')
    assert response.get_data().endswith('"text":"28×28"}\n'.encode())
    assert response.mimetype == "application/json"


def test_numpy_arrays_encode_as_nested_lists():
    pixels = np.array([[0.5, 0.25]], np.float32)
    assert encode({"pixels": pixels}, newline=False) == b'{"pixels":[[0.5,0.25]]}'


def test_request_bodies_decode_through_the_same_provider(app):
    with app.test_request_context(data=b'{"version": 2}', content_type="application/json"):
        assert request.get_json() == {"version": 2}
