"""Numeric arrays from JSON for the tensor protocols (Open Inference Protocol, TF Serving)."""

import numpy as np

from service.errors import BadRequest
from service.preprocess import normalize

# What JSON numbers may become: ints and floats for FP32, ints only for UINT8 (never bools,
# strings or nulls, which numpy would otherwise turn into numbers or objects without a word).
_KINDS = {"FP32": "iuf", "UINT8": "iu"}


def array_from_json(data: object, datatype: str, what: str) -> np.ndarray:
    """Nested JSON lists of numbers → a numpy array of FP32 (as given) or UINT8 (0..255) values."""
    if not isinstance(data, list):
        raise BadRequest(f"{what} must be a (nested) list of numbers")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):  # ragged or absurdly deep
        raise BadRequest(f"{what} must be a rectangular (nested) list of numbers") from None
    if array.dtype.kind not in _KINDS[datatype]:
        kind = "integers" if datatype == "UINT8" else "numbers"
        raise BadRequest(f"{what} must hold {kind} only")
    if datatype == "UINT8" and array.size and (array.min() < 0 or array.max() > 255):
        raise BadRequest(f"{what}: UINT8 values must be within 0..255")
    return array


def to_images(array: np.ndarray, datatype: str) -> np.ndarray:
    """Pixels as the model takes them: FP32 as given, UINT8 scaled like an uploaded image."""
    if datatype == "UINT8":
        return normalize(array.astype(np.uint8, copy=False))
    return array.astype(np.float32, copy=False)
