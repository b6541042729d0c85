"""Hidden layers read from real ONNX graphs: the MLP's units, a CNN's maps, the shipped v1."""

import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from service.activations import Inspector, plan
from service.errors import ModelLoadError
from service.runtime import CPU
from tests.tiny_models import tiny_cnn, tiny_mlp, tiny_model_bytes
from training.export import to_onnx

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models/fashion-mnist/1/model.onnx"
# Every version in the shipped registry: the page's "inside the network" view shows each.
SHIPPED_VERSIONS = sorted((REPO / "models/fashion-mnist").glob("*/model.onnx"))


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((28, 28), dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def conv_same(x: np.ndarray, kernels: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3×3 convolution with zero padding, [C,H,W] → [O,H,W], as ONNX Conv computes it."""
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(x, ((0, 0), (1, 1), (1, 1))), (3, 3), (1, 2)
    )
    return np.einsum("chwij,ocij->ohw", windows, kernels) + bias[:, None, None]


def inspect(model: bytes, picture: np.ndarray) -> dict:
    return Inspector([CPU], 1, 2).activations(("m", 1), lambda: model, picture).as_dict()


def test_mlp_hidden_units_and_readout_match_numpy():
    model, w = tiny_mlp(seed=4, hidden=16)
    picture = image(1)
    hidden = np.maximum(picture.reshape(-1) @ w["w1"] + w["b1"], 0)
    probabilities = softmax(hidden @ w["w2"] + w["b2"])
    top = int(probabilities.argmax())
    found = plan(model)
    assert [(layer.tensor, layer.op) for layer in found.layers] == [("hidden", "Relu")]
    result = Inspector([CPU], 1, 2).activations(("m", 1), lambda: model, picture)
    np.testing.assert_allclose(result.probabilities, probabilities, atol=1e-5)
    body = result.as_dict()
    (layer,) = body["layers"]
    assert (layer["kind"], layer["shape"]) == ("dense", [16])
    np.testing.assert_allclose(layer["values"], hidden, atol=1e-4)
    readout = body["readout"]
    assert (readout["layer"], readout["class_id"]) == ("hidden", top)
    # Each unit's push on the winning score; with the bias they add up to its logit.
    np.testing.assert_allclose(readout["contributions"], hidden * w["w2"][:, top], atol=1e-4)


def test_cnn_feature_maps_come_channels_first_whatever_the_graph_layout():
    model, w = tiny_cnn(seed=5)
    picture = image(2)
    conv1 = np.maximum(conv_same(picture[None], w["k1"], w["c1"]), 0)
    conv2 = np.maximum(conv_same(conv1, w["k2"], w["c2"]), 0)
    found = plan(model)
    # conv1 is read after a Transpose to channels-last, conv2 straight after its Conv.
    assert [(layer.tensor, layer.channel_axis) for layer in found.layers] == [
        ("conv1", 3),
        ("conv2", 1),
    ]
    body = inspect(model, picture)
    first, second = body["layers"]
    assert (first["kind"], first["shape"]) == ("maps", [3, 28, 28])
    assert (second["kind"], second["shape"]) == ("maps", [2, 28, 28])
    np.testing.assert_allclose(first["values"], conv1, atol=1e-3)
    np.testing.assert_allclose(second["values"], conv2, atol=1e-3)
    # The readout reads conv2 through a Reshape: one contribution per flattened unit.
    top = body["readout"]["class_id"]
    np.testing.assert_allclose(
        body["readout"]["contributions"], conv2.reshape(-1) * w["w"][:, top], atol=1e-3
    )


def test_shipped_version_1_shows_its_128_hidden_units():
    model = SHIPPED.read_bytes()
    found = plan(model)
    assert [layer.op for layer in found.layers] == ["Relu"]
    assert found.readout.weights.shape == (128, 10)
    body = inspect(model, image(3))
    assert body["layers"][0]["shape"] == [128]
    assert min(body["layers"][0]["values"]) >= 0  # ReLU outputs
    assert len(body["readout"]["contributions"]) == 128


def test_a_network_without_hidden_layers_has_nothing_to_show():
    body = inspect(tiny_model_bytes(1), image())
    assert body == {"layers": [], "readout": None}


def test_bytes_that_are_no_onnx_graph_are_refused():
    with pytest.raises(ModelLoadError, match="ONNX graph"):
        plan(b"definitely not protobuf \xff\xff")


def test_sessions_are_built_once_per_version_and_the_oldest_evicted():
    reads = []
    models = {1: tiny_mlp(1)[0], 2: tiny_mlp(2)[0]}

    def reader(version):
        return lambda: reads.append(version) or models[version]

    inspector = Inspector([CPU], 1, capacity=1)
    for version in (1, 1, 2, 1):
        inspector.activations(("m", version), reader(version), image())
    assert reads == [1, 2, 1]


def test_a_keras_cnn_exported_like_the_training_job_shows_keras_own_activations(tmp_path):
    # The real layout question: tf2onnx writes Keras' channels-last convolutions with Transposes.
    keras.utils.set_random_seed(0)
    conv1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
    conv2 = keras.layers.Conv2D(6, 3, padding="same")
    relu2 = keras.layers.ReLU()
    dense = keras.layers.Dense(16, activation="relu")
    inputs = keras.Input((28, 28), name="image")
    x = conv1(keras.layers.Reshape((28, 28, 1))(inputs))
    x = relu2(conv2(keras.layers.MaxPooling2D()(keras.layers.BatchNormalization()(x))))
    outputs = keras.layers.Dense(10)(dense(keras.layers.Flatten()(x)))
    model = keras.Model(inputs, outputs)
    picture = image(4)
    body = inspect(to_onnx(model, tmp_path / "cnn.onnx").read_bytes(), picture)
    assert [(layer["kind"], layer["shape"]) for layer in body["layers"]] == [
        ("maps", [4, 28, 28]),
        ("maps", [6, 14, 14]),
        ("dense", [16]),
    ]
    taps = keras.Model(inputs, [conv1.output, relu2.output, dense.output])(picture[None])
    for layer, expected in zip(body["layers"], taps, strict=True):
        expected = np.asarray(expected)[0]
        if expected.ndim == 3:  # Keras is channels-last; the API is channels-first
            expected = np.moveaxis(expected, -1, 0)
        np.testing.assert_allclose(layer["values"], expected, atol=1e-4)


def test_a_mirrored_graph_shows_the_pictures_own_pass():
    """Version 16 answers each picture with the mean of its own and its mirror's logits, one
    batch of two inside the graph: the layers shown are the picture's half, not the mirror's."""
    model = (REPO / "models/fashion-mnist/16/model.onnx").read_bytes()
    picture = image(5)
    shown = inspect(model, picture)["layers"]
    mirror_shown = inspect(model, np.ascontiguousarray(picture[:, ::-1]))["layers"]
    found = plan(model)
    session = ort.InferenceSession(found.model, providers=["CPUExecutionProvider"])
    batch = session.run([layer.tensor for layer in found.layers], {"image": picture[None]})
    assert all(len(values) == 2 for values in batch)  # the picture and its mirror, in one run
    own, mirrors = np.moveaxis(batch[0], found.layers[0].channel_axis, 1)  # channels first
    np.testing.assert_allclose(shown[0]["values"], own, atol=1e-4)
    np.testing.assert_allclose(mirror_shown[0]["values"], mirrors, atol=1e-4)


@pytest.mark.parametrize("path", SHIPPED_VERSIONS, ids=lambda p: f"version-{p.parent.name}")
def test_every_shipped_version_is_planned_without_the_onnx_package(path):
    """The serve image has no `onnx`: plan and read each shipped version with it unimportable."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["onnx"] = None  # any import of onnx now fails
        import numpy as np
        from service.activations import Inspector
        from service.runtime import CPU
        model = open({str(path)!r}, "rb").read()
        image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
        body = Inspector([CPU], 1, 1).activations(("m", 1), lambda: model, image).as_dict()
        print(len(body["layers"]), body["readout"] is not None)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    layers, readout = result.stdout.split()
    assert int(layers) >= 1
    assert readout == "True"


@pytest.mark.parametrize("path", SHIPPED_VERSIONS, ids=lambda p: f"version-{p.parent.name}")
def test_the_edited_graph_is_the_original_plus_the_hidden_layers_as_outputs(path):
    """Checked with the onnx package itself: every original field kept, only outputs added."""
    original = onnx.load_from_string(path.read_bytes())
    found = plan(path.read_bytes())
    edited = onnx.load_from_string(found.model)
    added = [output.name for output in edited.graph.output[len(original.graph.output) :]]
    assert added == [layer.tensor for layer in found.layers]
    for output in edited.graph.output[len(original.graph.output) :]:
        assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    del edited.graph.output[len(original.graph.output) :]
    assert edited == original
    # The readout's weights are the initializer's values, as onnx's own reader gives them.
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in original.graph.initializer}
    assert any(
        found.readout.weights.shape == w.shape and np.array_equal(found.readout.weights, w)
        for w in initializers.values()
    )
