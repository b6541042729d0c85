"""What every endpoint shares: query parameters, images, the core service, the version header."""

from collections.abc import Mapping
from typing import TypedDict

from flask import Response, current_app, request
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from service.contract import parse_version, validate_alias
from service.errors import BadRequest, BatchTooLarge
from service.inference import InferenceService
from service.loader import LoadedModel
from service.preprocess import parse_invert, parse_mode

from .body import read_body
from .errors import HttpError

EXTENSION = "fashion_serve"
MODEL_VERSION_HEADER = "X-Model-Version"
MODEL_VERSION = "fashion_serve.model_version"  # the same "name:version", in the environ for the log
RAW_BODY_TYPES = ("application/octet-stream",)
FIELD = "image"
# Parts a form may carry besides its images (a caption, a token...) before it is refused.
EXTRA_PARTS = 32


def core() -> InferenceService:
    """The app's inference service (kept in app.extensions, not in a module global)."""
    service: InferenceService = current_app.extensions[EXTENSION]
    return service


def with_model_version(response: Response, model: LoadedModel) -> Response:
    """Name the version that answered ("name:version"), for clients and the access log."""
    answered = f"{model.name}:{model.version}"
    response.headers[MODEL_VERSION_HEADER] = request.environ[MODEL_VERSION] = answered
    return response


class ImageQuery(TypedDict):
    """How to read the uploaded images: invert= and mode=."""

    invert: str
    mode: str


class ModelQuery(ImageQuery):
    """Which version answers, and how to read the images: the query string of an image request."""

    version: int | None
    alias: str | None


def model_query() -> ModelQuery:
    """version= / alias= / invert= / mode= from the query string, validated.

    An empty query string (most requests) costs nothing: Werkzeug's MultiDict is not built, and
    its get() raises and catches a KeyError per absent key, so keys are tested with `in` first.
    """
    query_string = request.environ.get("QUERY_STRING")
    return _query(request.args) if query_string else ModelQuery(**DEFAULT_QUERY)


def image_query() -> ImageQuery:
    """invert= / mode= from the query string, validated: how to read the uploaded images."""
    return _image_query(request.args)


def _query(args: Mapping[str, str]) -> ModelQuery:
    version = parse_version(args["version"]) if "version" in args else None
    alias = validate_alias(args["alias"]) if "alias" in args else None
    image = _image_query(args)
    return {"version": version, "alias": alias, "invert": image["invert"], "mode": image["mode"]}


def _image_query(args: Mapping[str, str]) -> ImageQuery:
    return {
        "invert": parse_invert(args.get("invert", "auto")),
        "mode": parse_mode(args.get("mode", "auto")),
    }


DEFAULT_QUERY = _query({})


def uploaded_images() -> list[bytes]:
    """The images of a multipart form (field 'image', repeatable) or of a raw image/* body.

    The Content-Type is parsed once, from the environ (Werkzeug's mimetype and mimetype_params
    would parse it with its heavier parser): this runs on every image request.
    """
    mimetype, options = parse_options_header(request.environ.get("CONTENT_TYPE", ""))
    settings = core().settings
    if mimetype == "multipart/form-data":
        return _multipart_images(options.get("boundary"), settings.max_batch, read_body(settings))
    if mimetype.startswith("image/") or mimetype in RAW_BODY_TYPES:
        body = read_body(settings)
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


def _multipart_images(boundary: str | None, limit: int, body: bytes) -> list[bytes]:
    """The bodies of the form's 'image' parts, in order.

    Parsed with `multipart` rather than Werkzeug's form parser: the same body costs 5 µs per
    part instead of 40-90 (bench/README.md), and no FileStorage or spool file is made per image.
    The body is read whole, which FASHION_MAX_UPLOAD_BYTES bounds (413 beyond it, body.py).
    """
    if not boundary:
        raise BadRequest("multipart/form-data needs a boundary parameter in its Content-Type")
    images: list[bytes] = []
    others: set[str] = set()
    chunks: list[bytes] | None = None  # the current image part's body, None for other parts
    try:
        with PushMultipartParser(boundary, max_segment_count=limit + EXTRA_PARTS) as parser:
            for data in (body, b""):  # the empty chunk tells the parser the body has ended
                for event in parser.parse(data):
                    if isinstance(event, MultipartSegment):
                        chunks = [] if event.name == FIELD else None
                        if chunks is None:
                            others.add(event.name)
                    elif event is None:  # the end of a part
                        if chunks is not None:
                            images.append(b"".join(chunks))
                    elif chunks is not None:
                        chunks.append(event)
    except MultipartError as exc:
        if len(images) > limit:
            raise BatchTooLarge(f"more than {limit} images in one request") from None
        # The first argument is the parser's own sentence; later ones may quote the client's bytes.
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else "unreadable"
        raise BadRequest(f"malformed multipart body: {reason}") from None
    if not images:
        named = sorted(repr(name)[:40] for name in others if name)
        raise BadRequest(
            f"expected multipart field {FIELD!r}"
            + (f", got {', '.join(named[:10])}" if named else ", got no named field")
        )
    return images
