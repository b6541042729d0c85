"""Keras → ONNX with the contract's names and shapes, and the Keras-vs-ONNX parity check."""

from pathlib import Path
from typing import Any

import keras
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from service.contract import IMAGE_SIDE, INPUT_NAME, NOVELTY_NAME, NUM_CLASSES, OUTPUT_NAME
from training import TrainingError

OPSET = 17
BATCH = "N"
MAX_ABS_DIFF = 1e-4
MIN_TOP1_AGREEMENT = 0.999
# The contract as version cards state it; a shape's None is the batch dimension (any size).
INPUTS = [
    {
        "name": INPUT_NAME,
        "dtype": "float32",
        "shape": [None, IMAGE_SIDE, IMAGE_SIDE],
        "description": "grayscale images, pixel / 255 (0 = black background, 1 = white), "
        "light object on dark ground as in Fashion-MNIST",
    }
]
OUTPUTS = [
    {
        "name": OUTPUT_NAME,
        "dtype": "float32",
        "shape": [None, NUM_CLASSES],
        "description": "softmax probabilities of the ten classes in class_names order; each row "
        "sums to 1",
    }
]


NOVELTY_OUTPUT = {
    "name": NOVELTY_NAME,
    "dtype": "float32",
    "shape": [None],
    "description": "energy score -logsumexp(calibrated logits): higher is less like the "
    "training data; above the card's novelty threshold the image is judged not clothing",
}


def outputs(novelty: bool) -> list[dict[str, Any]]:
    """The card's outputs entry of a graph with or without the novelty output."""
    return [*OUTPUTS, NOVELTY_OUTPUT] if novelty else list(OUTPUTS)


class ParityError(TrainingError):
    """The ONNX model breaks the contract or disagrees with Keras: it must not be registered."""


def serving_function(
    model: keras.Model, temperature: float = 1.0, mirror: bool = False, novelty: bool = False
) -> tf.types.experimental.GenericFunction:
    """The graph that ships: images float32 [N,28,28] in 0..1 → softmax probabilities [N,10].

    mirror: average the logits of each image and its left-right mirror (test-time mirroring);
    temperature: divide the logits by it before the softmax (calibration). Both live in the
    graph so that every protocol, and every in-process caller, gets the same answer.
    novelty: a second output, the energy of the calibrated logits (training.calibrate.energy).
    """

    @tf.function(  # type: ignore[untyped-decorator]  # TensorFlow ships no types
        input_signature=[tf.TensorSpec([None, IMAGE_SIDE, IMAGE_SIDE], tf.float32, INPUT_NAME)]
    )
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        if mirror:
            # One pass over [images; mirrors]: a single batch costs less than two runs.
            both = model(tf.concat([image, image[:, :, ::-1]], axis=0), training=False)
            first, second = tf.split(both, 2, axis=0)
            logits = (first + second) / 2.0
        else:
            logits = model(image, training=False)
        if temperature != 1.0:
            logits = logits / temperature
        if novelty:
            # Written out rather than tf.reduce_logsumexp, which tf2onnx expands into 20 nodes
            # guarding against infinite logits, which a finite network never gives.
            peak = tf.reduce_max(logits, axis=1, keepdims=True)
            spread = tf.reduce_sum(tf.exp(logits - peak), axis=1, keepdims=True)
            return {
                OUTPUT_NAME: tf.nn.softmax(logits),
                NOVELTY_NAME: -tf.squeeze(peak + tf.math.log(spread), axis=1),
            }
        return {OUTPUT_NAME: tf.nn.softmax(logits)}

    return serve


def to_onnx(
    model: keras.Model,
    path: Path,
    temperature: float = 1.0,
    mirror: bool = False,
    novelty: bool = False,
) -> Path:
    """Write model as ONNX to path; from_keras fails on Keras 3, so convert a tf.function."""
    serve = serving_function(model, temperature, mirror, novelty)
    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=serve.input_signature, opset=OPSET
    )
    # tf2onnx names the unknown batch dimension "unk__N"; one shared, readable name instead.
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH
    _constant_reshape_targets(proto)
    _drop_unused(proto.graph)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def _constant_reshape_targets(proto: onnx.ModelProto) -> None:
    """Give every Reshape whose result is known but for the batch a constant target [-1, ...].

    Keras' Flatten reshapes to (batch, features), so tf2onnx computes the target from the
    input's shape on every run (Shape, Gather, Cast, Slice, Concat, Cast): small nodes that
    cost a single image several microseconds. Shape inference with data propagation knows the
    result.
    """
    graph = proto.graph
    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    shapes = {value.name: value.type.tensor_type.shape.dim for value in inferred.graph.value_info}
    constants = {tensor.name for tensor in graph.initializer}
    for node in graph.node:
        dims = shapes.get(node.output[0])
        if node.op_type != "Reshape" or node.input[1] in constants or not dims:
            continue
        rest = [dim.dim_value for dim in dims[1:]]
        if all(rest):
            target = onnx.numpy_helper.from_array(
                np.array([-1, *rest], np.int64), f"{node.output[0]}/target"
            )
            graph.initializer.append(target)
            node.input[1] = target.name


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the nodes and initializers no graph output depends on."""
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    unused = [tensor for tensor in graph.initializer if tensor.name not in needed]
    for tensor in unused:
        graph.initializer.remove(tensor)


def _check_contract(session: ort.InferenceSession, novelty: bool) -> None:
    """ParityError unless the model takes `image` [N,28,28] and gives `probabilities` [N,10]
    (and `novelty` [N] when asked)."""
    expected = {
        kind: [
            (entry["name"], "tensor(float)", [BATCH if d is None else d for d in entry["shape"]])
            for entry in entries
        ]
        for kind, entries in (("inputs", INPUTS), ("outputs", outputs(novelty)))
    }
    found = {
        "inputs": [(i.name, i.type, list(i.shape)) for i in session.get_inputs()],
        # tf2onnx orders outputs by name; clients ask for them by name.
        "outputs": sorted((o.name, o.type, list(o.shape)) for o in session.get_outputs()),
    }
    expected["outputs"] = sorted(expected["outputs"])
    if found != expected:
        raise ParityError(f"ONNX model breaks the contract: expected {expected}, found {found}")


def check_parity(
    onnx_path: Path,
    images: np.ndarray,
    keras_probabilities: np.ndarray,
    keras_novelty: np.ndarray | None = None,
) -> dict[str, Any]:
    """Run the ONNX model on onnxruntime (CPU) over images and compare with Keras' probabilities
    (and novelty scores, when given: the graph must then have that output).

    Returns the card's parity entry; raises ParityError when the largest absolute difference
    exceeds MAX_ABS_DIFF (relative to the score's size for novelty) or the top class differs on
    more than 0.1% of the images.
    """
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    novelty = keras_novelty is not None
    _check_contract(session, novelty)
    names = [OUTPUT_NAME, NOVELTY_NAME] if novelty else [OUTPUT_NAME]
    onnx_probabilities, *rest = session.run(names, {INPUT_NAME: images.astype(np.float32)})
    max_abs_diff = float(np.abs(onnx_probabilities - keras_probabilities).max())
    novelty_diff = 0.0
    if keras_novelty is not None:
        scale = np.maximum(np.abs(keras_novelty), 1.0)
        novelty_diff = float((np.abs(rest[0] - keras_novelty) / scale).max())
        max_abs_diff = max(max_abs_diff, novelty_diff)
    agreement = float(
        (onnx_probabilities.argmax(axis=1) == keras_probabilities.argmax(axis=1)).mean()
    )
    parity = {"max_abs_diff": max_abs_diff, "top1_agreement": agreement, "images": len(images)}
    if novelty:
        parity["novelty_max_relative_diff"] = novelty_diff
    if not max_abs_diff <= MAX_ABS_DIFF or agreement < MIN_TOP1_AGREEMENT:
        raise ParityError(
            f"Keras and ONNX disagree on {len(images)} images: max |diff| {max_abs_diff:.3g} "
            f"(limit {MAX_ABS_DIFF:g}), top-1 agreement {agreement:.4%} "
            f"(floor {MIN_TOP1_AGREEMENT:.1%}); not registering"
        )
    return parity
