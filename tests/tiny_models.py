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
    side: int = 28, rows: int = -1,
) -> bytes:  # fmt: skip
    """softmax(flatten(image) @ weights + bias) as an ONNX model."""
    weights, bias = weights.astype(np.float32), bias.astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", [input_name, "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["logits_nb"]),
            helper.make_node("Add", ["logits_nb", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", side, side])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=[
            numpy_helper.from_array(np.array([rows, side * side], dtype=np.int64), "flat_shape"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
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


def force_alias(registry: Registry, name: str, alias: str, version: int) -> None:
    """Point an alias at a version without verification, as a hand edit or an old writer would."""
    path = registry.root / name / "aliases.json"
    aliases = json.loads(path.read_text()) if path.exists() else {}
    temp = path.with_name(".tmp-forced-aliases.json")
    temp.write_text(json.dumps({**aliases, alias: version}))
    os.replace(temp, path)  # atomic, as every writer of the registry must be
