"""Typed wire models of the request bodies (msgspec Structs); the tensor protocols decode theirs.

Decoding into them parses and validates a body's shape in one pass; what types cannot say
(binary sizes, value ranges) the endpoints check. The OpenAPI request schemas are generated
from these models, so the two cannot drift apart.
"""

from typing import Annotated, Any, Literal, TypeVar

import msgspec

from service.contract import IMAGE_SIDE, INPUT_NAME, NOVELTY_NAME, OUTPUT_NAME
from service.errors import BadRequest

T = TypeVar("T")
# The judgement as a tensor (BOOL [N]); with `novelty` an output a client may ask for.
IN_DISTRIBUTION = "in_distribution"
OUTPUT_NAMES = (OUTPUT_NAME, NOVELTY_NAME, IN_DISTRIBUTION)
Parameters = Annotated[
    dict[str, Any], msgspec.Meta(description="Protocol parameters (binary_data, ...).")
]
Count = Annotated[int, msgspec.Meta(ge=1)]
Side = Annotated[int, msgspec.Meta(ge=IMAGE_SIDE, le=IMAGE_SIDE)]
SIGNATURE = "serving_default"


class InferInput(msgspec.Struct, forbid_unknown_fields=False):
    """The `image` tensor, FP32 0..1 or UINT8 0..255: `data`, or binary (binary_data_size)."""

    name: Annotated[str, msgspec.Meta(pattern=f"^{INPUT_NAME}$")]
    datatype: Literal["FP32", "UINT8"]
    shape: tuple[Count, Side, Side]
    data: Annotated[list[Any], msgspec.Meta(min_length=1)] | None = None
    parameters: Parameters | None = None


class InferOutput(msgspec.Struct, forbid_unknown_fields=False):
    """An output to return: `probabilities` (JSON or binary, or Triton's top-k classification),
    or, from a version that judges its inputs, `novelty` (FP32 [N], higher: less like its
    training data) and `in_distribution` (BOOL [N]: novelty at most the card's threshold)."""

    name: Annotated[str, msgspec.Meta(pattern=f"^({'|'.join(OUTPUT_NAMES)})$")]
    parameters: Parameters | None = None


class InferRequest(msgspec.Struct, forbid_unknown_fields=False):
    """The Open Inference Protocol's inference request (the JSON header, with binary data)."""

    inputs: Annotated[list[InferInput], msgspec.Meta(min_length=1, max_length=1)]
    id: str | None = None
    outputs: Annotated[list[InferOutput], msgspec.Meta(max_length=len(OUTPUT_NAMES))] | None = None
    parameters: Parameters | None = None


class TfPredictRequest(msgspec.Struct, forbid_unknown_fields=False):
    """Exactly one of "instances" (per image: 28×28, {"b64"}, {"image"}) or "inputs" (a batch)."""

    signature_name: Annotated[str, msgspec.Meta(pattern=f"^{SIGNATURE}$")] = SIGNATURE
    instances: Annotated[list[Any], msgspec.Meta(min_length=1)] | msgspec.UnsetType = msgspec.UNSET
    inputs: list[Any] | dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class AliasRequest(msgspec.Struct):
    """The version an alias is to point at (models.promote reads it by hand: 2.0 counts as 2)."""

    version: Count


class CanaryRequest(msgspec.Struct):
    """The version an alias's canary is to be, and its share of the traffic in whole percent."""

    version: Count
    weight: Annotated[int, msgspec.Meta(ge=1, le=99)]


class FeedbackRequest(msgspec.Struct):
    """The true class of one image of an answered request (its X-Request-ID)."""

    request_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._:+/=-]{1,128}$")]
    label: Annotated[
        str | int, msgspec.Meta(description="A class name, or its index 0..9 in class order.")
    ]
    index: Annotated[int, msgspec.Meta(ge=0, description="Which image of the request.")] = 0


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind) for kind in (InferRequest, TfPredictRequest)
}


def decode(kind: type[T], data: bytes, what: str) -> T:
    """Parse and validate a body as ``kind``; BadRequest saying where it is wrong (never a 500)."""
    if not data:
        raise BadRequest(f"empty {what}: send a JSON document")
    try:
        return _DECODERS[kind].decode(data)  # type: ignore[no-any-return]
    except msgspec.ValidationError as error:
        raise BadRequest(f"invalid {what}: {str(error)[:300]}") from None
    except (msgspec.DecodeError, RecursionError) as error:  # RecursionError: absurdly deep
        raise BadRequest(f"{what} is not valid JSON: {str(error)[:200]}") from None
