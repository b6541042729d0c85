"""ONNX graphs read and edited with the protobuf runtime alone, without the `onnx` package.

The serve image leaves `onnx` out; the activations view needs only a few fields of ONNX's
messages, declared here with onnx.proto's stable field numbers. Every other field is kept as an
unknown field, so a parsed model serializes back whole.
"""

from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

FLOAT = 1  # TensorProto.DataType.FLOAT
INT8 = 3  # TensorProto.DataType.INT8
_PACKAGE = "fashion_serve.onnx_subset"

_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_T = descriptor_pb2.FieldDescriptorProto
# message → (field name, number, repeated, type, message type); numbers as in onnx.proto.
_MESSAGES: dict[str, tuple[tuple[str, int, bool, int, str], ...]] = {
    "ModelProto": (("graph", 7, False, _T.TYPE_MESSAGE, "GraphProto"),),
    "GraphProto": (
        ("node", 1, True, _T.TYPE_MESSAGE, "NodeProto"),
        ("initializer", 5, True, _T.TYPE_MESSAGE, "TensorProto"),
        ("output", 12, True, _T.TYPE_MESSAGE, "ValueInfoProto"),
    ),
    "NodeProto": (
        ("input", 1, True, _T.TYPE_STRING, ""),
        ("output", 2, True, _T.TYPE_STRING, ""),
        ("op_type", 4, False, _T.TYPE_STRING, ""),
        ("attribute", 5, True, _T.TYPE_MESSAGE, "AttributeProto"),
    ),
    "AttributeProto": (
        ("name", 1, False, _T.TYPE_STRING, ""),
        ("i", 3, False, _T.TYPE_INT64, ""),
        ("ints", 8, True, _T.TYPE_INT64, ""),
    ),
    "TensorProto": (
        ("dims", 1, True, _T.TYPE_INT64, ""),
        ("data_type", 2, False, _T.TYPE_INT32, ""),
        ("float_data", 4, True, _T.TYPE_FLOAT, ""),
        ("int32_data", 5, True, _T.TYPE_INT32, ""),  # int8 values, when not in raw_data
        ("name", 8, False, _T.TYPE_STRING, ""),
        ("raw_data", 9, False, _T.TYPE_BYTES, ""),
    ),
    "ValueInfoProto": (
        ("name", 1, False, _T.TYPE_STRING, ""),
        ("type", 2, False, _T.TYPE_MESSAGE, "TypeProto"),
    ),
    "TypeProto": (("tensor_type", 1, False, _T.TYPE_MESSAGE, "TensorTypeProto"),),
    "TensorTypeProto": (("elem_type", 1, False, _T.TYPE_INT32, ""),),  # TypeProto.Tensor
}


def _message_classes() -> dict[str, Any]:
    """The declared messages as protobuf classes, in a pool of their own."""
    schema = descriptor_pb2.FileDescriptorProto(
        name="fashion_serve_onnx_subset.proto", package=_PACKAGE, syntax="proto2"
    )
    for name, fields in _MESSAGES.items():
        message = schema.message_type.add(name=name)
        for field_name, number, repeated, kind, type_name in fields:
            field = message.field.add(
                name=field_name,
                number=number,
                type=kind,
                label=_REPEATED if repeated else _OPTIONAL,
            )
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _message_classes()


def parse_model(model: bytes) -> Any:
    """The ModelProto in `model`; ValueError when the bytes hold no ONNX graph."""
    parsed = _CLASSES["ModelProto"]()
    parsed.ParseFromString(model)  # protobuf's DecodeError on bytes that are no protobuf
    if not parsed.HasField("graph") or not parsed.graph.node:
        raise ValueError("no graph in it")
    return parsed


def add_float_output(graph: Any, name: str) -> None:
    """Expose the tensor `name` as a graph output of float elements, of any shape."""
    output = graph.output.add(name=name)
    output.type.tensor_type.elem_type = FLOAT


def float_array(tensor: Any) -> np.ndarray | None:
    """A float initializer's values in its shape; None for any other element type."""
    if tensor.data_type != FLOAT:
        return None
    if tensor.raw_data:
        values = np.frombuffer(tensor.raw_data, dtype="<f4")
    else:
        values = np.array(tensor.float_data, dtype=np.float32)
    return values.reshape(tuple(tensor.dims)).astype(np.float32)


def int8_magnitude(graph: Any) -> int:
    """The largest |value| among the graph's int8 initializers (a quantized graph's weights);
    0 when it has none."""
    largest = 0
    for tensor in graph.initializer:
        if tensor.data_type == INT8:
            values = (
                np.frombuffer(tensor.raw_data, dtype=np.int8).astype(np.int16)
                if tensor.raw_data
                else np.array(tensor.int32_data, dtype=np.int16)
            )
            if values.size:
                largest = max(largest, int(np.abs(values).max()))
    return largest
