"""The one place that turns domain errors into HTTP statuses and JSON error bodies."""

from flask import Flask, Response, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service import errors

# Most specific classes first: the first match wins.
STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (errors.BatchTooLarge, 413, "batch_too_large"),
    (errors.ImageTooLarge, 413, "image_too_large"),
    (errors.UnsupportedImageType, 415, "unsupported_image_type"),
    (errors.NoObjectFound, 422, "no_object_found"),
    (errors.InvalidImage, 422, "invalid_image"),
    (errors.NotClothing, 422, "not_clothing"),
    (errors.InvalidName, 400, "invalid_name"),
    (errors.BadRequest, 400, "bad_request"),
    (errors.ModelNotFound, 404, "model_not_found"),
    (errors.VersionNotFound, 404, "version_not_found"),
    (errors.AliasNotFound, 404, "alias_not_found"),
    (errors.FileNotFound, 404, "file_not_found"),
    (errors.PredictionNotFound, 404, "prediction_not_found"),
    (errors.NoAliasHistory, 409, "no_alias_history"),
    (errors.IntegrityError, 503, "model_refused"),
    (errors.ModelLoadError, 503, "model_refused"),
    (errors.NotReady, 503, "not_ready"),
    (errors.LoadThrottled, 503, "load_throttled"),
    (errors.DeadlineExceeded, 503, "timeout"),
    (errors.DeviceUnavailable, 503, "device_unavailable"),
    (errors.RegistryError, 503, "registry_unavailable"),
)


# Protocols with their own error body, {"error": "message"}: the Open Inference Protocol (/v2)
# and TF Serving's REST API (/v1). Same statuses; tools written for them parse this shape.
PLAIN_ERROR_PREFIXES = ("/v2/", "/v1/")


class HttpError(Exception):
    """An error that only exists at the HTTP level (authentication, content negotiation)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


def classify(error: Exception) -> tuple[int, str]:
    """Status and machine-readable code for a domain error."""
    for kind, status, code in STATUS:
        if isinstance(error, kind):
            return status, code
    return 500, "internal_error"


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The house error body {"error": {"code", "message"}}; {"error": message} under /v1 and /v2."""
    path = request.path if has_request_context() else ""
    if path == "/v2" or path.startswith(PLAIN_ERROR_PREFIXES):
        response = jsonify(error=message)
    else:
        response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def init_app(app: Flask) -> None:
    """Register JSON handlers so no error ever leaves as HTML."""

    @app.errorhandler(errors.FashionServeError)
    def domain_error(error: errors.FashionServeError) -> Response:
        status, code = classify(error)
        headers = None
        if isinstance(error, errors.LoadThrottled | errors.DeadlineExceeded):
            headers = {"Retry-After": str(error.retry_after)}
        return error_response(status, code, str(error), headers)

    @app.errorhandler(HttpError)
    def http_error(error: HttpError) -> Response:
        return error_response(error.status, error.code, str(error), error.headers)

    @app.errorhandler(HTTPException)
    def werkzeug_error(error: HTTPException) -> Response:
        code = (error.name or "error").lower().replace(" ", "_")
        response = error_response(error.code or 500, code, error.description or error.name)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response
