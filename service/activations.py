"""Inside the network: find a version's hidden layers in its ONNX graph and read their values."""

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service import onnx_graph
from service.contract import CLASS_NAMES, NUM_CLASSES, OUTPUT_NAME
from service.errors import ModelLoadError
from service.runtime import OnnxModel, Providers

# A hidden layer is the output of a non-linearity: what the lecture calls a neuron's activation.
ACTIVATION_OPS = frozenset(
    {"Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Gelu", "Sigmoid", "Tanh", "HardSwish"}
)
# Operators whose output is NCHW by the ONNX specification: channels on axis 1.
CHANNELS_FIRST_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "BatchNormalization",
        "InstanceNormalization",
    }
)
# Operators that keep their first input's layout (element-wise, or identity at inference).
LAYOUT_KEEPING_OPS = ACTIVATION_OPS | {"Add", "Sub", "Mul", "Div", "Identity", "Dropout", "Clip"}
# A dense readout may read its hidden layer through these without changing the unit order.
FLATTENING_OPS = frozenset({"Flatten", "Reshape"})
DENSE_OPS = frozenset({"MatMul", "Gemm"})
DECIMALS = 4  # activations are shown, not computed with: 4 decimals keep feature maps small


# ONNX messages (service/onnx_graph.py), dynamic protobuf classes: Any to mypy.
Node = Any
Producers = dict[str, Node]  # tensor name → the node that computes it
Initializers = dict[str, Any]  # the graph's stored constants (TensorProto) by name
VersionKey = tuple[str, int, str | None]  # model, version, sha256 of its model.onnx


@dataclass(frozen=True)
class Layer:
    """A hidden layer: the tensor a non-linearity outputs, and where its channels are (4-D)."""

    tensor: str
    op: str
    channel_axis: int


@dataclass(frozen=True)
class Readout:
    """The dense layer from the last hidden layer to the ten class scores: weights [units, 10]."""

    layer: str
    weights: np.ndarray


@dataclass(frozen=True)
class Plan:
    """What to read in one graph, and the graph with those tensors exposed as outputs."""

    layers: tuple[Layer, ...]
    readout: Readout | None
    model: bytes


@dataclass(frozen=True)
class Activations:
    """One image's hidden layers, probabilities, and each unit's push on the winning class."""

    plan: Plan
    probabilities: np.ndarray
    values: tuple[np.ndarray, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: layers (dense units or channel-first feature maps) and the readout."""
        top = int(self.probabilities.argmax())
        pairs = zip(self.plan.layers, self.values, strict=True)
        layers = [_layer_dict(layer, value) for layer, value in pairs]
        body: dict[str, Any] = {"layers": layers, "readout": None}
        readout = self.plan.readout
        if readout is not None:
            hidden = self.values[[x.tensor for x in self.plan.layers].index(readout.layer)]
            # The unit's share of the winning class's score: activation × its weight to the class.
            contributions = hidden.reshape(-1) * readout.weights[:, top]
            body["readout"] = {
                "layer": readout.layer,
                "class_id": top,
                "label": CLASS_NAMES[top],
                "contributions": np.round(contributions, DECIMALS).tolist(),
            }
        return body


def _layer_dict(layer: Layer, value: np.ndarray) -> dict[str, Any]:
    if value.ndim == 3:  # feature maps: always sent channels first, [C,H,W]
        value = np.moveaxis(value, layer.channel_axis - 1, 0)
        kind = "maps"
    else:
        value = value.reshape(-1)
        kind = "dense"
    return {
        "name": layer.tensor,
        "op": layer.op,
        "kind": kind,
        "shape": list(value.shape),
        "values": np.round(value, DECIMALS).tolist(),
    }


def plan(model: bytes) -> Plan:
    """Find the hidden layers and the dense readout of an ONNX model, and expose them."""
    try:
        graph_model = onnx_graph.parse_model(model)
    except Exception as error:  # protobuf's DecodeError, or no graph in what it parsed
        raise ModelLoadError(f"cannot read the ONNX graph: {error}") from None
    graph = graph_model.graph
    initializers = {init.name: init for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    layers = tuple(
        Layer(node.output[0], node.op_type, _channel_axis(node.output[0], producers, initializers))
        for node in graph.node
        if node.op_type in ACTIVATION_OPS and node.output[0] != OUTPUT_NAME
    )
    readout = _readout(graph, {layer.tensor for layer in layers}, producers, initializers)
    exposed = {output.name for output in graph.output}
    for layer in layers:
        if layer.tensor not in exposed:
            onnx_graph.add_float_output(graph, layer.tensor)
    return Plan(layers, readout, graph_model.SerializeToString())


def _data_input(node: Node, initializers: Initializers) -> str | None:
    """The node's first input that is computed, not a stored constant."""
    return next((name for name in node.input if name and name not in initializers), None)


def _channel_axis(tensor: str, producers: Producers, initializers: Initializers) -> int:
    """Where a tensor's channels are: follow producers back to an NCHW operator or a Transpose."""
    permutations: list[list[int]] = []
    node = producers.get(tensor)
    while node is not None:
        if node.op_type in CHANNELS_FIRST_OPS:
            axis = 1
            for permutation in reversed(permutations):  # apply the Transposes in graph order
                axis = permutation.index(axis)
            return axis
        if node.op_type == "Transpose":
            given = [list(a.ints) for a in node.attribute if a.name == "perm"]
            if not given:
                break
            permutations.append(given[0])
        elif node.op_type not in LAYOUT_KEEPING_OPS:
            break
        source = _data_input(node, initializers)
        node = producers.get(source) if source else None
    return 1  # no convolution found upstream: ONNX's own convention, NCHW


def _readout(
    graph: Any, hidden: set[str], producers: Producers, initializers: Initializers
) -> Readout | None:
    """The MatMul/Gemm that turns a hidden layer (maybe flattened) into the ten class scores."""
    for node in graph.node:
        if node.op_type not in DENSE_OPS or len(node.input) < 2:
            continue
        weights_name = node.input[1]
        if weights_name not in initializers:
            continue
        weights = onnx_graph.float_array(initializers[weights_name])
        if weights is None:
            continue
        transposed = node.op_type == "Gemm" and any(
            a.name == "transB" and a.i for a in node.attribute
        )
        if transposed:
            weights = weights.T
        if weights.ndim != 2 or weights.shape[1] != NUM_CLASSES:
            continue
        source, producer = node.input[0], producers.get(node.input[0])
        while source not in hidden and producer is not None and producer.op_type in FLATTENING_OPS:
            source = producer.input[0]
            producer = producers.get(source)
        if source in hidden:
            return Readout(source, weights.astype(np.float32))
    return None


class Inspector:
    """Sessions that expose hidden layers, one per version, the least recently used evicted."""

    def __init__(self, providers: Providers, threads: int, capacity: int) -> None:
        self._providers, self._threads, self._capacity = providers, threads, max(1, capacity)
        self._lock = threading.Lock()
        self._cache: OrderedDict[VersionKey, tuple[Plan, OnnxModel]] = OrderedDict()

    def activations(
        self, key: VersionKey, read: Callable[[], bytes], image: np.ndarray
    ) -> Activations:
        """The hidden layers of the version `key` (its bytes from `read`) for one [28,28] image."""
        plan_, model = self._session(key, read)
        names = [OUTPUT_NAME, *(layer.tensor for layer in plan_.layers)]
        outputs = model.run_outputs(image[np.newaxis], names)
        return Activations(plan_, outputs[0][0], tuple(value[0] for value in outputs[1:]))

    def _session(self, key: VersionKey, read: Callable[[], bytes]) -> tuple[Plan, OnnxModel]:
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            # Built under the lock: two first requests for a version must not build it twice.
            plan_ = plan(read())
            cached = plan_, OnnxModel(plan_.model, self._providers, self._threads)
            self._cache[key] = cached
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
            return cached
