"""The interoperability protocols against gunicorn (2 workers) over real HTTP.

tritonclient speaks the Open Inference Protocol (binary and JSON), /metrics adds up both workers,
the access log writes one JSON line per request, and schemathesis holds the service to its
OpenAPI document.
"""

import json
import subprocess
import sys
import uuid

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from evaluation.photos import KINDS, render_photos
from service.preprocess import preprocess
from service.runtime import CPU, OnnxModel
from tests.conftest import MODEL, tiny_registry
from tests.e2e.server import GunicornServer
from tests.images import dark_images
from tests.waiting import wait_for
from training.data import DEFAULT_DIR, load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One gunicorn with two workers over a tiny registry, shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("protocols")
    registry = tiny_registry(tmp)
    with GunicornServer(registry.root, tmp / "server.log", workers=2) as server:
        yield server, registry


@pytest.fixture(scope="module")
def client(served):
    server, _ = served
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield client
    client.close()


def reference(registry, version: int, images: np.ndarray) -> np.ndarray:
    """The version's probabilities computed by onnxruntime in this process."""
    return OnnxModel(registry.model_path(MODEL, version).read_bytes(), [CPU]).run(images)


def test_tritonclient_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, "2")
    assert not client.is_model_ready("nope")
    server = client.get_server_metadata()
    assert server["name"] == "fashion-serve"
    assert "binary_tensor_data" in server["extensions"]
    model = client.get_model_metadata(MODEL)
    assert model["versions"] == ["1", "2"]
    assert model["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert model["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get_model_metadata(MODEL, "2")["name"] == MODEL


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer_equals_onnxruntime(client, served, binary):
    _, registry = served
    pixels = np.stack(dark_images(4, seed=5))
    images = pixels.astype(np.float32) / 255
    tensor = triton.InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=binary)
    wanted = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer(MODEL, [tensor], outputs=wanted, request_id="r1")
    response = result.get_response()
    assert response["model_version"] == "1"
    assert response["id"] == "r1"
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), reference(registry, 1, images), rtol=1e-6, atol=1e-7
    )
    # UINT8 pixels against version 2: normalized on the server exactly like an upload.
    raw = triton.InferInput("image", list(pixels.shape), "UINT8")
    raw.set_data_from_numpy(pixels, binary_data=binary)
    result = client.infer(MODEL, [raw], model_version="2", outputs=wanted)
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), reference(registry, 2, images), rtol=1e-6, atol=1e-7
    )


def test_tritonclient_defaults_compression_classification_and_errors(client, served):
    _, registry = served
    images = np.stack(dark_images(2, seed=6)).astype(np.float32) / 255
    expected = reference(registry, 1, images)
    tensor = triton.InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)  # the defaults: binary input, binary outputs
    result = client.infer(MODEL, [tensor])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-6, atol=1e-7)
    compressed = client.infer(MODEL, [tensor], request_compression_algorithm="gzip")
    np.testing.assert_allclose(compressed.as_numpy("probabilities"), expected, rtol=1e-6)
    top = client.infer(
        MODEL, [tensor], outputs=[triton.InferRequestedOutput("probabilities", class_count=2)]
    ).as_numpy("probabilities")
    assert top.shape == (2, 2)
    assert [int(entry.decode().split(":")[1]) for entry in top[:, 0]] == list(
        expected.argmax(axis=1)
    )
    with pytest.raises(InferenceServerException, match="nope") as error:
        client.infer("nope", [tensor])
    assert error.value.status() == "404"
    wrong = triton.InferInput("image", [1, 28], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 28), np.float32))
    with pytest.raises(InferenceServerException, match="shape") as error:
        client.infer(MODEL, [wrong])
    assert error.value.status() == "400"


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_add_up_both_workers(served):
    server, _ = served
    before = scrape(server.url)
    loads = ("fashion_model_loads_total", (("model", MODEL),))
    assert before[loads] >= 2  # each worker loaded production once: both are counted
    assert before[("fashion_alias_version", (("alias", "production"), ("model", MODEL)))] == 1
    image = np.zeros((1, 28, 28), np.float32).tolist()
    for _ in range(12):  # a new connection each: either worker may answer
        response = requests.post(
            f"{server.url}/v1/models/{MODEL}:predict", json={"instances": image}, timeout=10
        )
        assert response.status_code == 200
    key = (
        "fashion_http_requests_total",
        (("endpoint", "/v1/models/<name>:predict"), ("method", "POST"), ("status", "200")),
    )
    for _ in range(3):  # whichever worker answers the scrape reports the same total
        after = scrape(server.url)
        assert after[key] - before.get(key, 0) == 12
    classified = sum(v for (n, _), v in after.items() if n == "fashion_images_classified_total")
    before_classified = sum(
        v for (n, _), v in before.items() if n == "fashion_images_classified_total"
    )
    assert classified - before_classified == 12


def test_request_id_round_trip_and_one_json_log_line(served):
    server, _ = served
    request_id = f"e2e-{uuid.uuid4().hex}"
    response = requests.get(
        f"{server.url}/v1/models/{MODEL}", headers={"X-Request-ID": request_id}, timeout=10
    )
    assert response.headers["X-Request-ID"] == request_id
    generated = requests.get(f"{server.url}/healthz", timeout=10).headers["X-Request-ID"]
    assert len(generated) == 32
    (line,) = wait_for(
        lambda: [line for line in server.log().splitlines() if request_id in line],
        "the access log line",
        timeout=10,
    )
    entry = json.loads(line)
    assert entry["method"] == "GET"
    assert entry["path"] == f"/v1/models/{MODEL}"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert f'"GET /v1/models/{MODEL} HTTP/1.1"' not in server.log()  # no gunicorn access log


def test_photos_are_seen_and_classified_as_in_process(served):
    server, registry = served
    data = load(DEFAULT_DIR)
    photos = [p.data for p in render_photos(data.test_images, data.test_labels, len(KINDS))]
    expected = preprocess(photos)
    files = [("image", blob) for blob in photos]
    seen = requests.post(f"{server.url}/preprocess", files=files, timeout=60)
    assert seen.status_code == 200, seen.text
    images = seen.json()["images"]
    assert [image["mode"] for image in images] == ["photo"] * len(KINDS)
    pixels = np.array([image["pixels"] for image in images], dtype=np.float32)
    assert np.array_equal(pixels, expected.images)
    answered = requests.post(f"{server.url}/predict", files=files, timeout=60)
    got = [list(p["probabilities"].values()) for p in answered.json()["predictions"]]
    np.testing.assert_allclose(got, reference(registry, 1, expected.images), rtol=1e-6)


# Coverage and fuzzing of 27 operations: minutes on a busy two-core machine.
@pytest.mark.timeout(1200)
def test_schemathesis_finds_nothing(served, tmp_path):
    server, _ = served
    report = tmp_path / "junit.xml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "10",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--request-timeout",
            "20",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "Traceback" not in server.log()
