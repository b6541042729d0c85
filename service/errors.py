"""Domain exceptions of the core; the HTTP layer alone decides which status each one becomes."""


class FashionServeError(Exception):
    """Base class: every error the core raises on purpose."""


class InvalidName(FashionServeError, ValueError):
    """A model or alias name that does not match the registry's naming rule."""


class RegistryError(FashionServeError):
    """The registry folder is missing, unreadable or inconsistent."""


class ModelNotFound(FashionServeError, LookupError):
    """No model with this name in the registry."""


class VersionNotFound(FashionServeError, LookupError):
    """The model exists but not this version."""


class AliasNotFound(FashionServeError, LookupError):
    """The model exists but has no such alias."""


class PredictionNotFound(FashionServeError, LookupError):
    """Feedback named a request this service does not remember (unknown, or too old)."""


class FileNotFound(FashionServeError, LookupError):
    """A version has no such public file (or the name is not one a version may serve)."""


class NoAliasHistory(FashionServeError):
    """A rollback was asked for an alias that never pointed anywhere else."""


class IntegrityError(FashionServeError):
    """A version's model.onnx no longer matches the sha256 recorded in its card."""


class ModelLoadError(FashionServeError):
    """onnxruntime could not load a version, or it does not honour the ONNX contract."""


class DeviceUnavailable(FashionServeError):
    """The requested execution device (e.g. CUDA) is not offered by onnxruntime."""


class NotReady(FashionServeError):
    """The requested model is not loaded (yet, or it was refused)."""


class LoadThrottled(FashionServeError):
    """Loading another version now would starve the traffic this process already serves."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(FashionServeError):
    """A request's work ran past its time budget (FASHION_REQUEST_TIMEOUT) and was stopped
    between two of its steps; the process is fine and serves the next request."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidImage(FashionServeError, ValueError):
    """Bytes that cannot be decoded as a supported image."""


class UnsupportedImageType(InvalidImage):
    """A well-formed file of a type the service does not accept (SVG, PDF, HTML, ...)."""


class ImageTooLarge(InvalidImage):
    """An image whose declared pixel count exceeds the decoding limit (decompression bomb)."""


class NoObjectFound(InvalidImage):
    """A photo in which nothing stands out from the ground: nothing to classify."""


class NotClothing(FashionServeError):
    """An image the answering version judges unlike its training data, and the client asked
    for such images to be refused (?unknown=reject)."""


class BadRequest(FashionServeError, ValueError):
    """A request malformed apart from its images (bad parameter, batch too large, ...)."""


class BatchTooLarge(BadRequest):
    """More images in one request than the configured batch limit."""
