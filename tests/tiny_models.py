"""Tiny but real ONNX models honouring the serving contract, built with onnx.helper (no TF)."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.contract import CLASS_NAMES
from service.registry import Registry


def tiny_model_bytes(seed: int = 0, *, input_name: str = "image", side: int = 28) -> bytes:
    """A linear softmax classifier image[N,28,28] → probabilities[N,10] with seeded weights."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.5, (side * side, 10)).astype(np.float32)
    bias = rng.normal(0, 0.1, 10).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", [input_name, "flat_shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["logits_nb"]),
            helper.make_node("Add", ["logits_nb", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        f"tiny-{seed}",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", side, side])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=[
            numpy_helper.from_array(np.array([-1, side * side], dtype=np.int64), "flat_shape"),
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
