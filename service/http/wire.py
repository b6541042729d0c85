"""Typed wire models of the tensor protocols' request bodies (msgspec Structs).

Decoding into them parses and validates the shape of a body in one pass (issue 15 measured
~34 µs for a single-image /v2 body against ~135 µs for json.loads plus checks by hand); what the
types cannot say (the tensor's name, binary sizes, value ranges) the endpoints check.
"""

from typing import Annotated, Any, Literal, TypeVar

import msgspec

from service.contract import INPUT_NAME, OUTPUT_NAME
from service.errors import BadRequest

Parameters = dict[str, Any]
T = TypeVar("T")
Dimension = Annotated[int, msgspec.Meta(ge=0)]


class V2Tensor(msgspec.Struct, forbid_unknown_fields=False):
    """One input tensor: `image`, FP32 0..1 or UINT8 0..255, shape [N, 28, 28]."""

    name: Annotated[str, msgspec.Meta(examples=[INPUT_NAME])]
    datatype: Literal["FP32", "UINT8"]
    shape: Annotated[list[Dimension], msgspec.Meta(min_length=3, max_length=3)]
    # Nested or flat lists of numbers; absent when the tensor travels in the binary section.
    data: list[Any] | None = None
    parameters: Parameters | None = None


class V2Output(msgspec.Struct, forbid_unknown_fields=False):
    """A requested output: `probabilities`, JSON or binary, or Triton's top-k classification."""

    name: Annotated[str, msgspec.Meta(examples=[OUTPUT_NAME])]
    parameters: Parameters | None = None


class V2InferRequest(msgspec.Struct, forbid_unknown_fields=False):
    """The Open Inference Protocol's inference request (its JSON header, with binary data)."""

    inputs: Annotated[list[V2Tensor], msgspec.Meta(min_length=1, max_length=1)]
    id: str | None = None
    outputs: list[V2Output] | None = None
    parameters: Parameters | None = None


class TfPredictRequest(msgspec.Struct, forbid_unknown_fields=False):
    """TF Serving's predict request: rows ("instances") or columns ("inputs"), not both."""

    signature_name: str = "serving_default"
    instances: Any = msgspec.UNSET
    inputs: Any = msgspec.UNSET


_DECODERS = {
    V2InferRequest: msgspec.json.Decoder(V2InferRequest),
    TfPredictRequest: msgspec.json.Decoder(TfPredictRequest),
}


def decode(kind: type[T], data: bytes, what: str) -> T:
    """Parse and validate a body as ``kind``; BadRequest saying where it is wrong (never a 500)."""
    if not data:
        raise BadRequest(f"empty {what}: send a JSON document")
    try:
        return _DECODERS[kind].decode(data)  # type: ignore[return-value]
    except msgspec.ValidationError as error:
        raise BadRequest(f"invalid {what}: {str(error)[:300]}") from None
    except (msgspec.DecodeError, RecursionError) as error:  # RecursionError: absurdly deep
        raise BadRequest(f"{what} is not valid JSON: {str(error)[:200]}") from None
