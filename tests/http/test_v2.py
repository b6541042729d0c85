"""The Open Inference Protocol (/v2) through Flask's test client: JSON and binary forms, errors."""

import gzip
import json

import numpy as np
import pytest

from service.contract import CLASS_NAMES
from service.http import create_app
from tests.conftest import MODEL
from tests.http.checks import assert_plain_error, model_output
from tests.images import checkerboard, dark_images

INFER = f"/v2/models/{MODEL}/infer"


def pixels(count: int = 2) -> np.ndarray:
    return np.stack(dark_images(count))


def json_request(images: np.ndarray, datatype: str = "FP32", **extra) -> dict:
    return {
        "inputs": [
            {
                "name": "image",
                "datatype": datatype,
                "shape": list(images.shape),
                "data": images.tolist(),
            }
        ],
        **extra,
    }


def binary_body(images: np.ndarray, datatype: str, outputs: list | None = None) -> tuple:
    raw = images.tobytes()
    header = {
        "inputs": [
            {
                "name": "image",
                "datatype": datatype,
                "shape": list(images.shape),
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    if outputs is not None:
        header["outputs"] = outputs
    else:
        header["parameters"] = {"binary_data_output": True}
    encoded = json.dumps(header).encode()
    return encoded + raw, {"Inference-Header-Content-Length": str(len(encoded))}


def test_server_metadata_health_and_readiness(client):
    meta = client.get("/v2").get_json()
    assert meta["name"] == "fashion-serve"
    assert "binary_tensor_data" in meta["extensions"]
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").get_json() == {"ready": True}


def test_model_metadata_and_ready_with_and_without_version(client):
    for path in (f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/versions/2"):
        meta = client.get(path).get_json()
        assert meta["name"] == MODEL
        assert meta["versions"] == ["1", "2"]
        assert meta["platform"] == "onnxruntime_onnx"
        assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 28, 28]}]
        assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    ready = client.get(f"/v2/models/{MODEL}/ready")
    assert ready.status_code == 200
    assert ready.headers["X-Model-Version"] == f"{MODEL}:1"
    assert client.get(f"/v2/models/{MODEL}/versions/2/ready").headers["X-Model-Version"] == (
        f"{MODEL}:2"
    )


def test_json_infer_fp32_matches_the_model(client, app):
    images = pixels().astype(np.float32) / 255
    response = client.post(INFER, json=json_request(images, id="req-7"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Model-Version"] == f"{MODEL}:1"
    body = response.get_json()
    assert body["model_name"] == MODEL
    assert body["model_version"] == "1"
    assert body["id"] == "req-7"
    (output,) = body["outputs"]
    assert output["name"] == "probabilities"
    assert output["datatype"] == "FP32"
    assert output["shape"] == [2, 10]
    got = np.array(output["data"], dtype=np.float32).reshape(2, 10)
    np.testing.assert_array_equal(got, model_output(app, images))


def test_uint8_is_normalized_like_an_upload_and_flat_data_is_accepted(client, app):
    images = pixels()
    request = json_request(images, "UINT8")
    request["inputs"][0]["data"] = images.ravel().tolist()
    body = client.post(f"/v2/models/{MODEL}/versions/2/infer", json=request).get_json()
    assert body["model_version"] == "2"
    got = np.array(body["outputs"][0]["data"], dtype=np.float32).reshape(2, 10)
    np.testing.assert_array_equal(
        got, model_output(app, images.astype(np.float32) / 255, version=2)
    )


@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
def test_binary_inputs_and_outputs(client, app, datatype):
    images = pixels(3)
    tensor = images.astype(np.float32) / 255 if datatype == "FP32" else images
    body, headers = binary_body(tensor, datatype)
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    length = int(response.headers["Inference-Header-Content-Length"])
    raw = response.get_data()
    header = json.loads(raw[:length])
    (output,) = header["outputs"]
    assert output["parameters"] == {"binary_data_size": 3 * 10 * 4}
    got = np.frombuffer(raw[length:], dtype="<f4").reshape(output["shape"])
    np.testing.assert_array_equal(got, model_output(app, images.astype(np.float32) / 255))


def test_binary_input_with_json_output_and_gzip_body(client, app):
    images = pixels(1).astype(np.float32) / 255
    body, headers = binary_body(
        images, "FP32", outputs=[{"name": "probabilities", "parameters": {"binary_data": False}}]
    )
    response = client.post(
        INFER, data=gzip.compress(body), headers={**headers, "Content-Encoding": "gzip"}
    )
    assert "Inference-Header-Content-Length" not in response.headers
    data = response.get_json()["outputs"][0]["data"]
    np.testing.assert_array_equal(np.array(data, np.float32), model_output(app, images)[0])


def test_classification_extension_gives_top_k_labels(client, app):
    images = pixels(1).astype(np.float32) / 255
    request = json_request(
        images, outputs=[{"name": "probabilities", "parameters": {"classification": 3}}]
    )
    (output,) = client.post(INFER, json=request).get_json()["outputs"]
    assert output["datatype"] == "BYTES"
    assert output["shape"] == [1, 3]
    probabilities = model_output(app, images)[0]
    best = int(probabilities.argmax())
    assert output["data"][0] == f"{probabilities[best]:f}:{best}:{CLASS_NAMES[best]}"


def good() -> dict:
    return json_request(pixels(1).astype(np.float32) / 255)


def with_input(**changes) -> dict:
    request = good()
    request["inputs"][0].update(changes)
    return request


@pytest.mark.parametrize(
    ("request_body", "status"),
    [
        (b"", 400),
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b"\xff\xfe\x00", 400),
        (b"[" * 100_000, 400),
        (json.dumps({"inputs": []}).encode(), 400),
        (json.dumps(with_input(name="pixels")).encode(), 400),
        (json.dumps(with_input(datatype="INT64")).encode(), 400),
        (json.dumps(with_input(shape=[1, 28])).encode(), 400),
        (json.dumps(with_input(shape=[2, 28, 28])).encode(), 400),
        (json.dumps(with_input(shape=[1, 28, True])).encode(), 400),
        (json.dumps(with_input(data=[[1, 2], [3]])).encode(), 400),
        (json.dumps(with_input(data=["a"] * 784)).encode(), 400),
        (json.dumps(with_input(data=[None] * 784)).encode(), 400),
        (json.dumps(with_input(data=[True] * 784)).encode(), 400),
        (json.dumps(with_input(data=[float("nan")] * 784)).encode(), 400),
        (json.dumps(with_input(datatype="UINT8", data=[256] * 784)).encode(), 400),
        (json.dumps(with_input(datatype="UINT8", data=[0.5] * 784)).encode(), 400),
        (json.dumps(with_input(parameters={"binary_data_size": 3136})).encode(), 400),
        (json.dumps({**good(), "outputs": [{"name": "logits"}]}).encode(), 400),
        (
            json.dumps(
                {**good(), "outputs": [{"name": "probabilities", "parameters": 3}]}
            ).encode(),
            400,
        ),
        (json.dumps({**good(), "id": 5}).encode(), 400),
    ],
)
def test_bad_requests_are_400_with_a_plain_error(client, request_body, status):
    assert_plain_error(client.post(INFER, data=request_body), status)


def test_bad_binary_framing(client):
    images = pixels(1).astype(np.float32) / 255
    body, headers = binary_body(images, "FP32")
    length = headers["Inference-Header-Content-Length"]
    cases = [
        (body[:-4], headers),  # binary section too short
        (body + b"x", headers),  # bytes left over
        (body, {"Inference-Header-Content-Length": "-1"}),
        (body, {"Inference-Header-Content-Length": str(len(body) + 1)}),
        (body, {"Inference-Header-Content-Length": str(int(length) - 1)}),
        (body, {**headers, "Content-Encoding": "gzip"}),  # not actually gzip
    ]
    for data, head in cases:
        assert_plain_error(client.post(INFER, data=data, headers=head), 400)
    assert_plain_error(
        client.post(INFER, data=body, headers={**headers, "Content-Encoding": "br"}), 415
    )


def test_unknown_targets_and_limits(settings):
    from dataclasses import replace

    app = create_app(replace(settings, max_batch=2, max_upload_bytes=20_000))
    client = app.test_client()
    request = json.dumps(good())
    assert "nope" in assert_plain_error(client.post("/v2/models/nope/infer", data=request), 404)
    assert_plain_error(client.post(f"/v2/models/{MODEL}/versions/9/infer", data=request), 404)
    assert_plain_error(client.post(f"/v2/models/{MODEL}/versions/x/infer", data=request), 400)
    assert_plain_error(client.post("/v2/models/BAD/infer", data=request), 400)
    assert_plain_error(client.get("/v2/models/nope"), 404)
    assert_plain_error(client.get(f"/v2/models/{MODEL}/versions/9"), 404)
    assert_plain_error(client.get(f"/v2/models/{MODEL}/versions/9/ready"), 404)
    assert_plain_error(client.get("/v2/models/nope/ready"), 404)
    assert_plain_error(client.get("/v2/nothing-here"), 404)
    assert_plain_error(client.get(INFER), 405)
    three = np.zeros((3, 28, 28), np.uint8)
    body, headers = binary_body(three, "UINT8")
    assert_plain_error(client.post(INFER, data=body, headers=headers), 413)  # batch limit
    assert_plain_error(client.post(INFER, data=b"x" * 30_000), 413)  # upload limit
    bomb = gzip.compress(b" " * 1_000_000)
    assert_plain_error(client.post(INFER, data=bomb, headers={"Content-Encoding": "gzip"}), 413)
    app.extensions["fashion_serve"].close()


def test_not_ready_server(settings, tmp_path):
    from dataclasses import replace

    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app(replace(settings, model_dir=empty))
    client = app.test_client()
    response = client.get("/v2/health/ready")
    assert response.status_code == 503
    assert response.get_json() == {"ready": False}
    assert_plain_error(client.post(INFER, data=json.dumps(good())), 503)
    app.extensions["fashion_serve"].close()


def judged_images(reference) -> np.ndarray:
    """A clothing picture then a checkerboard, float32 0..1."""
    return np.stack([reference.clothing(), checkerboard()]).astype(np.float32) / 255


def test_the_judgement_is_returned_only_when_asked_for(client, judging, novelty_reference):
    images = judged_images(novelty_reference)
    url = f"/v2/models/{MODEL}/versions/{judging}/infer"
    default = client.post(url, json=json_request(images)).get_json()
    assert [output["name"] for output in default["outputs"]] == ["probabilities"]
    asked = [{"name": "in_distribution"}, {"name": "probabilities"}, {"name": "novelty"}]
    body = client.post(url, json=json_request(images, outputs=asked)).get_json()
    judged, probabilities, novelty = body["outputs"]
    assert judged == {
        "name": "in_distribution",
        "datatype": "BOOL",
        "shape": [2],
        "data": [True, False],
    }
    assert probabilities["data"] == default["outputs"][0]["data"]
    assert (novelty["name"], novelty["datatype"], novelty["shape"]) == ("novelty", "FP32", [2])
    expected = novelty_reference.novelty(np.round(images * 255))
    np.testing.assert_allclose(novelty["data"], expected, rtol=1e-5)


def test_a_judging_versions_metadata_lists_its_optional_outputs(client, judging):
    outputs = client.get(f"/v2/models/{MODEL}/versions/{judging}").get_json()["outputs"]
    assert outputs == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "novelty", "datatype": "FP32", "shape": [-1]},
        {"name": "in_distribution", "datatype": "BOOL", "shape": [-1]},
    ]


def test_binary_judgement_outputs_follow_the_header_in_order(client, judging, novelty_reference):
    images = judged_images(novelty_reference)
    binary = {"binary_data": True}
    outputs = [{"name": name, "parameters": binary} for name in ("novelty", "in_distribution")]
    body, headers = binary_body(images, "FP32", outputs=outputs)
    response = client.post(
        f"/v2/models/{MODEL}/versions/{judging}/infer", data=body, headers=headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    length = int(response.headers["Inference-Header-Content-Length"])
    raw = response.get_data()
    novelty, judged = json.loads(raw[:length])["outputs"]
    assert novelty["parameters"] == {"binary_data_size": 8}
    assert judged["parameters"] == {"binary_data_size": 2}
    scores = np.frombuffer(raw[length : length + 8], "<f4")
    assert scores[0] <= novelty_reference.threshold < scores[1]
    assert raw[length + 8 :] == bytes([1, 0])


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([{"name": "novelty"}], "does not judge its inputs"),
        ([{"name": "probabilities"}, {"name": "in_distribution"}], "does not judge its inputs"),
        ([{"name": "novelty"}, {"name": "novelty"}], "once"),
        ([{"name": "novelty", "parameters": {"classification": 2}}], "probabilities' only"),
        ([{"name": "energy"}], "inference request"),
    ],
)
def test_judgement_outputs_refused_with_the_v2_error_shape(client, outputs, message):
    request = json_request(pixels(1).astype(np.float32) / 255, outputs=outputs)
    assert message in assert_plain_error(client.post(INFER, json=request), 400)
