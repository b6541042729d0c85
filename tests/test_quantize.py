"""training.quantize on a small real convolutional ONNX model, over the real dataset."""

import numpy as np
import onnx
import onnxruntime
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

from service import onnx_graph
from service.contract import CLASS_NAMES
from service.loader import check_model
from service.preprocess import normalize
from service.registry import Registry
from service.runtime import CPU, INT8_SAFE, OnnxModel, overflows_int8_kernels
from tests.tiny_models import fitted_model_bytes
from training import data, quantize

REAL_DATA = data.DEFAULT_DIR
pytestmark = pytest.mark.skipif(
    not REAL_DATA.is_dir(), reason=f"needs Debian's dataset-fashion-mnist in {REAL_DATA}"
)
NAME = "fashion-mnist"
USED, HELD, SEED = 2000, 200, 42  # the first USED training images, HELD of them for validation
FILTERS, SIDE, STRIDE = 4, 7, 3
CELLS = (28 - SIDE) // STRIDE + 1  # 8: the convolution's output side
# This small a network keeps 99.5 % of its answers (the shipped ones 99.6 %); its floor leaves room.
FLOOR = "0.98"


def features(filters: np.ndarray, images: np.ndarray) -> np.ndarray:
    """ReLU(convolution) of images [N,28,28], flattened [N, FILTERS * CELLS * CELLS]."""
    windows = sliding_window_view(images, (SIDE, SIDE), axis=(1, 2))[:, ::STRIDE, ::STRIDE]
    maps = np.einsum("nijkl,fkl->nfij", windows, filters[:, 0])
    return np.maximum(maps, 0).reshape(len(images), -1)


def conv_model(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Random 5x5 filters, ReLU, and a readout fitted by ridge regression (about 0.8 on test),
    with the novelty output the shipped versions have: -logsumexp of the logits."""
    filters = np.random.default_rng(0).normal(0, 0.3, (FILTERS, 1, SIDE, SIDE)).astype(np.float32)
    x = np.hstack([features(filters, images), np.ones((len(images), 1))])
    solution = np.linalg.solve(x.T @ x + np.eye(x.shape[1]), x.T @ (np.eye(10)[labels] * 10))
    nodes = [
        helper.make_node("Unsqueeze", ["image", "channel_axis"], ["planes"]),
        helper.make_node("Conv", ["planes", "filters"], ["maps"], strides=[STRIDE, STRIDE]),
        helper.make_node("Relu", ["maps"], ["active"]),
        helper.make_node("Reshape", ["active", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ReduceLogSumExp", ["logits", "class_axis"], ["energy"], keepdims=0),
        helper.make_node("Neg", ["energy"], ["novelty"]),
    ]
    initializer = [
        numpy_helper.from_array(np.array([1], np.int64), "channel_axis"),
        numpy_helper.from_array(np.array([1], np.int64), "class_axis"),
        numpy_helper.from_array(filters, "filters"),
        numpy_helper.from_array(np.array([-1, FILTERS * CELLS * CELLS], np.int64), "flat_shape"),
        numpy_helper.from_array(solution[:-1].astype(np.float32), "weights"),
        numpy_helper.from_array(solution[-1].astype(np.float32), "bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
            helper.make_tensor_value_info("novelty", TensorProto.FLOAT, ["N"]),
        ],
        initializer=initializer,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    return data.load(REAL_DATA)


def card(dataset: data.Dataset, accuracy: float, sha256: str | None = None) -> dict:
    """What the training job records that quantizing reads: data, seed, metrics, novelty."""
    used = dataset.train_images[:USED]
    return {
        "architecture": {"name": "tiny-conv"},
        "class_names": list(CLASS_NAMES),
        "data": {
            "train_count": USED - HELD,
            "validation_count": HELD,
            "train_images_sha256": sha256 or data.sha256_of(used),
        },
        "training": {"seed": SEED},
        "metrics": {"test_accuracy": accuracy},
        "calibration": {"temperature": 1.0},
        "novelty": {"threshold": 0.0, "false_alarm_target": 0.05, "measured": {}},
    }


def register(registry: Registry, dataset: data.Dataset, tmp_path, sha256: str | None = None):
    train, labels, _, _ = data.split_validation(
        dataset.train_images[:USED], dataset.train_labels[:USED], HELD, SEED
    )
    model = conv_model(normalize(train), labels)
    answers = OnnxModel(model, [CPU]).run(normalize(dataset.test_images))
    accuracy = float((answers.argmax(axis=1) == dataset.test_labels).mean())
    (tmp_path / "conv.onnx").write_bytes(model)
    return registry.register(NAME, tmp_path / "conv.onnx", card(dataset, accuracy, sha256))


@pytest.fixture
def registry(tmp_path, dataset) -> Registry:
    registry = Registry(tmp_path / "registry")
    registry.root.mkdir()
    register(registry, dataset, tmp_path)
    return registry


def run(registry: Registry, *options: str, floor: str = FLOOR) -> int:
    return quantize.main([*options, "--registry", str(registry.root), "--min-agreement", floor])


def test_a_quantized_version_has_int8_convolutions_and_is_measured_afresh(registry, dataset):
    assert run(registry, "1", "--promote", "production") == 0

    assert registry.versions(NAME) == [1, 2]
    assert registry.aliases(NAME) == {"production": 2}
    graph = onnx.load_from_string(registry.read_verified(NAME, 2)).graph
    kinds = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= kinds
    weights = {init.name: init.data_type for init in graph.initializer}
    assert TensorProto.INT8 in weights.values()  # the filters
    assert weights["weights"] == TensorProto.FLOAT  # the dense readout stays float32
    model = check_model(registry.read_verified(NAME, 2))  # the service loads it
    test = normalize(dataset.test_images)
    probabilities = model.run(test)
    new, old = registry.card(NAME, 2), registry.card(NAME, 1)
    accuracy = float((probabilities.argmax(axis=1) == dataset.test_labels).mean())
    assert new["metrics"]["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert accuracy > 0.7
    assert abs(accuracy - old["metrics"]["test_accuracy"]) < 0.01
    assert new["quantization"]["from_version"] == 1
    assert new["quantization"]["calibration_images"] == USED - HELD  # all it has
    assert new["parity"]["against_version"] == 1
    assert new["parity"]["top1_agreement"] >= float(FLOOR)
    # The novelty threshold is set again, on the quantized graph's scores of the validation set.
    _, _, held, _ = data.split_validation(
        dataset.train_images[:USED], dataset.train_labels[:USED], HELD, SEED
    )
    held_scores = model.run_judged(normalize(held))[1]
    assert held_scores is not None
    flagged = float((held_scores > new["novelty"]["threshold"]).mean())
    assert new["novelty"]["measured"]["validation_flagged"] == pytest.approx(flagged)
    assert 0.02 <= flagged <= 0.06
    assert new["calibration"]["temperature"] == 1.0
    assert "ece_after" in new["calibration"]["test"]
    assert (registry.model_path(NAME, 2).parent / "confusion.png").is_file()


def test_the_int8_kernels_compute_what_the_graph_says_on_this_cpu(registry, dataset):
    """onnxruntime's fused integer kernels against the same graph run unfused (each weight
    dequantized, the convolution in float32). Without VNNI, x86 kernels sum pairs of uint8 x
    int8 products in 16 bits, which full 8-bit weights overflow; 7-bit weights leave room."""
    assert run(registry, "1") == 0
    int8 = registry.read_verified(NAME, 2)

    assert 0 < onnx_graph.int8_magnitude(onnx_graph.parse_model(int8).graph) <= INT8_SAFE
    assert not overflows_int8_kernels(int8)
    unfused = onnxruntime.SessionOptions()
    unfused.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = onnxruntime.InferenceSession(int8, unfused, providers=[CPU])
    test = normalize(dataset.test_images)
    kernels, arithmetic = OnnxModel(int8, [CPU]).run(test), reference.run(None, {"image": test})
    probabilities = dict(zip([o.name for o in reference.get_outputs()], arithmetic, strict=True))
    assert (kernels.argmax(axis=1) == probabilities["probabilities"].argmax(axis=1)).all()
    np.testing.assert_allclose(kernels, probabilities["probabilities"], atol=0.02)


def test_quantizing_again_gives_the_same_graph(registry):
    assert run(registry, "1") == 0
    assert run(registry, "1") == 0

    assert registry.card(NAME, 2)["sha256"] == registry.card(NAME, 3)["sha256"]


def test_a_version_trained_on_other_images_is_refused(registry, dataset, tmp_path, capsys):
    register(registry, dataset, tmp_path, sha256="0" * 64)

    assert run(registry, "2") == 1

    assert "not those version 2 was trained on" in capsys.readouterr().err
    assert registry.versions(NAME) == [1, 2]


def test_a_quantized_version_is_not_quantized_again(registry, capsys):
    assert run(registry, "1") == 0

    assert run(registry, "2") == 1

    assert "version 2 is already quantized (from version 1)" in capsys.readouterr().err
    assert registry.versions(NAME) == [1, 2]


def test_a_network_without_convolutions_is_refused(registry, dataset, tmp_path, capsys):
    images = normalize(dataset.train_images[:USED])
    (tmp_path / "linear.onnx").write_bytes(fitted_model_bytes(images, dataset.train_labels[:USED]))
    registry.register(NAME, tmp_path / "linear.onnx", card(dataset, 0.8))

    assert run(registry, "2") == 1

    assert "version 2 has no Conv to quantize" in capsys.readouterr().err
    assert registry.versions(NAME) == [1, 2]


@pytest.mark.parametrize(("section", "key"), [("data", "train_count"), ("training", "seed")])
def test_a_card_without_its_split_is_one_line_error(
    registry, dataset, tmp_path, capsys, section, key
):
    handmade = card(dataset, 0.8)
    del handmade[section][key]
    (tmp_path / "conv.onnx").write_bytes(registry.read_verified(NAME, 1))
    registry.register(NAME, tmp_path / "conv.onnx", handmade)

    assert run(registry, "2") == 1

    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: version 2's card does not say which images trained it")
    assert registry.versions(NAME) == [1, 2]


def test_a_graph_that_changes_answers_is_not_registered(registry, capsys):
    assert run(registry, "1", floor="1") == 1  # int8 changes a few of this network's answers

    assert "not registering" in capsys.readouterr().err
    assert registry.versions(NAME) == [1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["1", "--gate"], "--gate needs --promote ALIAS"),
        (["1", "--calibration-images", "0"], "--calibration-images must be at least 1"),
        (["1", "--gate-photos", "0", "--promote", "production"], "--gate-photos must be at"),
        (["1", "--min-agreement", "1.5"], "--min-agreement must be above 0 and at most 1"),
    ],
)
def test_contradictory_options_are_usage_errors(registry, options, message, capsys):
    with pytest.raises(SystemExit) as exited:
        quantize.main([*options, "--registry", str(registry.root)])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unregistered_version_is_one_line_error(registry, capsys):
    assert run(registry, "7") == 1

    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: model 'fashion-mnist' has no version 7")
