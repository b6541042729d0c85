"""A version that judges its inputs, served by gunicorn over real HTTP: every protocol agrees.

JSON /predict, tritonclient (binary, asking for the extra outputs) and TF Serving (unchanged)
answer the same probabilities, bit-identical to onnxruntime in this process, and JSON and v2
the same judgement.
"""

import numpy as np
import pytest
import requests
import tritonclient.http as triton

from service.runtime import CPU, OnnxModel
from tests.conftest import MODEL, tiny_registry
from tests.e2e.server import GunicornServer
from tests.images import checkerboard, png
from tests.tiny_models import register_novelty

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory, novelty_reference):
    tmp = tmp_path_factory.mktemp("judgement")
    registry = tiny_registry(tmp)
    reference = novelty_reference
    version = register_novelty(registry, MODEL, tmp, reference.mean, reference.threshold)
    with GunicornServer(registry.root, tmp / "server.log", workers=1) as server:
        yield server, registry, version


def test_every_protocol_agrees_on_the_probabilities_and_the_judgement(served, novelty_reference):
    server, registry, version = served
    pixels = np.stack([novelty_reference.clothing(), checkerboard()])
    images = pixels.astype(np.float32) / 255
    expected, novelty = OnnxModel(
        registry.model_path(MODEL, version).read_bytes(), [CPU]
    ).run_judged(images)
    judged = (novelty <= novelty_reference.threshold).tolist()
    assert judged == [True, False]

    files = [("image", (f"{i}.png", png(p), "image/png")) for i, p in enumerate(pixels)]
    answer = requests.post(
        f"{server.url}/models/{MODEL}/predict", params={"version": version}, files=files, timeout=30
    ).json()["predictions"]
    assert [p["in_distribution"] for p in answer] == judged
    assert [p["novelty"] for p in answer] == novelty.tolist()
    served_rows = np.array([list(p["probabilities"].values()) for p in answer], np.float32)
    np.testing.assert_array_equal(served_rows, expected)

    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        tensor = triton.InferInput("image", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images)
        names = ("probabilities", "novelty", "in_distribution")
        wanted = [triton.InferRequestedOutput(name) for name in names]
        result = client.infer(MODEL, [tensor], model_version=str(version), outputs=wanted)
    finally:
        client.close()
    np.testing.assert_array_equal(result.as_numpy("probabilities"), expected)
    np.testing.assert_array_equal(result.as_numpy("novelty"), novelty)
    assert result.as_numpy("in_distribution").tolist() == judged

    tf = requests.post(
        f"{server.url}/v1/models/{MODEL}/versions/{version}:predict",
        json={"instances": images.tolist()},
        timeout=30,
    ).json()
    assert list(tf) == ["predictions"]  # TF Serving's answer is unchanged: no judgement in it
    np.testing.assert_array_equal(np.array(tf["predictions"], np.float32), expected)
