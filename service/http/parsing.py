"""Read the parts of a request every endpoint shares: query parameters, images, the core service."""

from flask import current_app, request

from service.errors import BadRequest
from service.inference import InferenceService
from service.preprocess import parse_invert
from service.registry import validate_name

from .errors import HttpError

EXTENSION = "fashion_serve"
RAW_BODY_TYPES = ("application/octet-stream",)


def core() -> InferenceService:
    """The app's inference service (kept in app.extensions, not in a module global)."""
    return current_app.extensions[EXTENSION]


def parse_version(value: str | None, what: str = "version") -> int | None:
    """A positive integer version from a path or query string, or None when absent."""
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or value.startswith("0"):
        raise BadRequest(f"{what} must be a positive integer, not {value!r}")
    return int(value)


def model_query() -> dict:
    """version= / alias= / invert= from the query string, validated."""
    args = request.args
    version = parse_version(args.get("version"))
    alias = args.get("alias")
    if alias is not None:
        alias = validate_name(alias, "alias")
    return {"version": version, "alias": alias, "invert": parse_invert(args.get("invert", "auto"))}


def uploaded_images() -> list[bytes]:
    """The images of a multipart form (field 'image', repeatable) or of a raw image/* body."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        files = request.files.getlist("image")
        if not files:
            # Werkzeug names a part it cannot decode None: name only the readable ones.
            fields = sorted({repr(f)[:40] for f in (*request.files, *request.form) if f})
            raise BadRequest(
                "expected multipart field 'image'"
                + (f", got {', '.join(fields[:10])}" if fields else ", got no named field")
            )
        return [f.read() for f in files]
    if mimetype.startswith("image/") or mimetype in RAW_BODY_TYPES:
        body = request.get_data(cache=False)
        if not body:
            raise BadRequest("empty request body: send the image bytes")
        return [body]
    if not mimetype and not request.content_length:
        raise BadRequest("empty request: send multipart field 'image' or a raw image/* body")
    raise HttpError(
        415,
        "unsupported_media_type",
        f"cannot read images from {mimetype or 'a body without Content-Type'}: send "
        "multipart/form-data with field 'image', or a raw body with Content-Type image/*",
    )
