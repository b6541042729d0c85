"""Tiny but real ONNX models honouring the serving contract, built with onnx.helper (no TF)."""

import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.contract import CLASS_NAMES
from service.registry import Registry


def tiny_model_bytes(
    seed: int = 0, *, input_name: str = "image", side: int = 28, rows: int = -1
) -> bytes:
    """A linear softmax classifier image[N,28,28] → probabilities[N,10] with seeded weights.

    rows other than -1 reshapes the batch to that many rows: a model that loads but cannot run.
    """
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.5, (side * side, 10))
    bias = rng.normal(0, 0.1, 10)
    return linear_model_bytes(
        weights, bias, f"tiny-{seed}", input_name=input_name, side=side, rows=rows
    )


def fitted_model_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """A linear classifier fitted by ridge regression on one-hot labels (~0.8 on the test set)."""
    features = np.hstack([images.reshape(len(images), -1), np.ones((len(images), 1))])
    targets = np.eye(10)[labels] * 10  # sharper softmax; the argmax is the same either way
    gram = features.T @ features + np.eye(features.shape[1])
    solution = np.linalg.solve(gram, features.T @ targets)
    return linear_model_bytes(solution[:-1], solution[-1], "fitted-linear")


def linear_model_bytes(
    weights: np.ndarray, bias: np.ndarray, graph_name: str, *, input_name: str = "image",
    side: int = 28, rows: int = -1, novelty_mean: np.ndarray | None = None,
) -> bytes:  # fmt: skip
    """softmax(flatten(image) @ weights + bias) as an ONNX model.

    novelty_mean [28,28] adds the output `novelty` [N]: the mean squared distance of each image
    from that picture, a genuine function of the input (far from the mean: high novelty).
    """
    weights, bias = weights.astype(np.float32), bias.astype(np.float32)
    nodes = [
        helper.make_node("Reshape", [input_name, "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["logits_nb"]),
        helper.make_node("Add", ["logits_nb", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])]
    initializer = [
        numpy_helper.from_array(np.array([rows, side * side], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(bias, "bias"),
    ]
    if novelty_mean is not None:
        nodes += [
            helper.make_node("Sub", ["flat", "mean_image"], ["offset"]),
            helper.make_node("Mul", ["offset", "offset"], ["squared"]),
            helper.make_node("ReduceMean", ["squared"], ["novelty"], axes=[1], keepdims=0),
        ]
        outputs.append(helper.make_tensor_value_info("novelty", TensorProto.FLOAT, ["N"]))
        mean = novelty_mean.reshape(1, side * side).astype(np.float32)
        initializer.append(numpy_helper.from_array(mean, "mean_image"))
    graph = helper.make_graph(
        nodes,
        graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", side, side])],
        outputs,
        initializer=initializer,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_card(seed: int) -> dict:
    """A minimal version card for a tiny model (the registry adds name, version and sha256)."""
    return {
        "architecture": {"name": f"tiny-linear-{seed}", "parameters": 784 * 10 + 10},
        "metrics": {"test_accuracy": None},
        "class_names": list(CLASS_NAMES),
        "inputs": [{"name": "image", "dtype": "float32", "shape": [None, 28, 28]}],
        "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [None, 10]}],
    }


def register_tiny(registry: Registry, name: str, seed: int, tmp: Path, **kwargs) -> int:
    """Register a tiny model as the next version of `name`; returns the version number."""
    path = tmp / f"tiny-{name}-{seed}.onnx"
    path.write_bytes(tiny_model_bytes(seed, **kwargs))
    return registry.register(name, path, tiny_card(seed))


def novelty_model_bytes(seed: int, mean: np.ndarray) -> bytes:
    """A seeded tiny linear classifier that also judges its inputs: novelty = mean squared
    distance from ``mean`` (the training images' mean picture in the tests)."""
    rng = np.random.default_rng(seed)
    weights, bias = rng.normal(0, 0.5, (784, 10)), rng.normal(0, 0.1, 10)
    return linear_model_bytes(weights, bias, f"tiny-novelty-{seed}", novelty_mean=mean)


def novelty_entry(threshold: float) -> dict:
    """A card's "novelty" entry as the contract (docs/api.md) describes it."""
    return {
        "score": "squared distance from the mean training image",
        "threshold": threshold,
        "false_alarm_target": 0.05,
        "measured": {},
    }


def register_novelty(
    registry: Registry, name: str, tmp: Path, mean: np.ndarray, threshold: float | None,
    *, output: bool = True, seed: int = 7,
) -> int:  # fmt: skip
    """Register a judging tiny model; threshold None leaves the card's entry out, output False
    the graph's output (the two halves the loader must refuse alone)."""
    path = tmp / f"tiny-novelty-{name}-{seed}-{output}-{threshold}.onnx"
    path.write_bytes(novelty_model_bytes(seed, mean) if output else tiny_model_bytes(seed))
    card = tiny_card(seed)
    if threshold is not None:
        card["novelty"] = novelty_entry(threshold)
    return registry.register(name, path, card)


def _finish(graph) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _io() -> tuple:
    return (
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
    )


def tiny_mlp(seed: int = 0, hidden: int = 16) -> tuple[bytes, dict[str, np.ndarray]]:
    """The lecture's network in miniature: 784 → Dense(hidden, ReLU) → Dense(10) → softmax.

    Returns the model and its weights (w1, b1, w2, b2) for reference computations.
    """
    rng = np.random.default_rng(seed)
    weights = {
        "w1": rng.normal(0, 0.1, (784, hidden)).astype(np.float32),
        "b1": rng.normal(0, 0.1, hidden).astype(np.float32),
        "w2": rng.normal(0, 0.5, (hidden, 10)).astype(np.float32),
        "b2": rng.normal(0, 0.1, 10).astype(np.float32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w1"], ["h_nb"]),
            helper.make_node("Add", ["h_nb", "b1"], ["h_pre"]),
            helper.make_node("Relu", ["h_pre"], ["hidden"]),
            helper.make_node("MatMul", ["hidden", "w2"], ["logits_nb"]),
            helper.make_node("Add", ["logits_nb", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        f"tiny-mlp-{seed}",
        *_io(),
        initializer=[
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
            *(numpy_helper.from_array(value, name) for name, value in weights.items()),
        ],
    )
    return _finish(graph), weights


def tiny_cnn(seed: int = 0) -> tuple[bytes, dict[str, np.ndarray]]:
    """A real two-convolution network laid out the way tf2onnx writes Keras ones.

    image → [N,1,28,28] → Conv(3 maps, 3×3, same) → Transpose to NHWC → ReLU ("conv1", channels
    last) → Transpose back → Conv(2 maps) → ReLU ("conv2", channels first) → flatten →
    Dense(10) → softmax. Returns the model and its weights (k1, c1, k2, c2, w, b).
    """
    rng = np.random.default_rng(seed)
    weights = {
        "k1": rng.normal(0, 0.5, (3, 1, 3, 3)).astype(np.float32),
        "c1": rng.normal(0, 0.1, 3).astype(np.float32),
        "k2": rng.normal(0, 0.5, (2, 3, 3, 3)).astype(np.float32),
        "c2": rng.normal(0, 0.1, 2).astype(np.float32),
        "w": rng.normal(0, 0.05, (2 * 28 * 28, 10)).astype(np.float32),
        "b": rng.normal(0, 0.1, 10).astype(np.float32),
    }
    same = {"pads": [1, 1, 1, 1]}
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["image", "nchw_shape"], ["x"]),
            helper.make_node("Conv", ["x", "k1", "c1"], ["conv1_nchw"], **same),
            helper.make_node("Transpose", ["conv1_nchw"], ["conv1_nhwc"], perm=[0, 2, 3, 1]),
            helper.make_node("Relu", ["conv1_nhwc"], ["conv1"]),
            helper.make_node("Transpose", ["conv1"], ["conv1_back"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["conv1_back", "k2", "c2"], ["conv2_pre"], **same),
            helper.make_node("Relu", ["conv2_pre"], ["conv2"]),
            helper.make_node("Reshape", ["conv2", "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits_nb"]),
            helper.make_node("Add", ["logits_nb", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        f"tiny-cnn-{seed}",
        *_io(),
        initializer=[
            numpy_helper.from_array(np.array([-1, 1, 28, 28], dtype=np.int64), "nchw_shape"),
            numpy_helper.from_array(np.array([-1, 2 * 28 * 28], dtype=np.int64), "flat_shape"),
            *(numpy_helper.from_array(value, name) for name, value in weights.items()),
        ],
    )
    return _finish(graph), weights


def force_alias(registry: Registry, name: str, alias: str, version: int) -> None:
    """Point an alias at a version without verification, as a hand edit or an old writer would."""
    path = registry.root / name / "aliases.json"
    aliases = json.loads(path.read_text()) if path.exists() else {}
    temp = path.with_name(".tmp-forced-aliases.json")
    temp.write_text(json.dumps({**aliases, alias: version}))
    os.replace(temp, path)  # atomic, as every writer of the registry must be


def with_novelty(model: bytes) -> bytes:
    """A linear model (linear_model_bytes) plus the optional output `novelty` float32 [N]: the
    energy score -logsumexp(logits)."""
    proto = onnx.load_from_string(model)
    proto.graph.node.extend([
        helper.make_node("ReduceLogSumExp", ["logits"], ["log_sum"], axes=[1], keepdims=0),
        helper.make_node("Neg", ["log_sum"], ["novelty"]),
    ])  # fmt: skip
    proto.graph.output.append(helper.make_tensor_value_info("novelty", TensorProto.FLOAT, ["N"]))
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def with_bias_shift(model: bytes, class_id: int, shift: float) -> bytes:
    """A linear model (linear_model_bytes) whose bias for one class is moved by `shift`: a
    negative one gives away that class's closest calls, a candidate a few items worse."""
    proto = onnx.load_from_string(model)
    (bias,) = [tensor for tensor in proto.graph.initializer if tensor.name == "bias"]
    values = numpy_helper.to_array(bias).copy()
    values[class_id] += shift
    bias.CopyFrom(numpy_helper.from_array(values, "bias"))
    onnx.checker.check_model(proto)
    return proto.SerializeToString()
