"""The images of a request: a multipart form (field 'image', repeatable) or a raw image body."""

from flask import request
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from service.errors import BadRequest, BatchTooLarge

from . import current
from .body import read_body
from .error_map import HttpError

RAW_BODY_TYPES = ("application/octet-stream",)
FIELD = "image"
# Parts a form may carry besides its images (a caption, a token...) before it is refused.
EXTRA_PARTS = 32


def uploaded_images() -> list[bytes]:
    """The images of a multipart form (field 'image', repeatable) or of a raw image/* body."""
    # Parsed from the environ: Werkzeug's request.mimetype would use its heavier parser.
    mimetype, options = parse_options_header(request.environ.get("CONTENT_TYPE", ""))
    settings = current.settings()
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
    """The bodies of the form's 'image' parts, in order, from a body read whole (body.py).

    `multipart` rather than Werkzeug's form parser: no FileStorage or spool file per image.
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
