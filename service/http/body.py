"""Request bodies read while they stream: 413 at the limit, decompressed and parsed as they come.

The one home of the upload limit: it holds for Content-Length and chunked bodies alike, and for
gzip/deflate bodies after inflation, which stops at the limit. A JSON body may hold at most one
batch of values, so a bomb of numbers is refused as its commas arrive, before it is parsed.
"""

import zlib
from collections.abc import Iterator
from typing import Any

import msgspec
from flask import request
from werkzeug.wsgi import get_content_length

from service.contract import IMAGE_SIDE
from service.errors import BadRequest
from service.settings import Settings

from .error_map import HttpError

CHUNK = 64 * 1024
INFLATE_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
# Commas a JSON request may hold besides its pixels: object members, outputs, parameters.
STRUCTURE_COMMAS = 1024


def read_body(settings: Settings, json_prefix: int | None = None) -> bytes:
    """The request body, inflated per Content-Encoding; 413 as soon as it passes a limit.

    ``json_prefix``: how many leading bytes are JSON (None: none; -1: all of them), which the
    value budget applies to. Headers are read from the environ: no Headers object per request.
    """
    environ = request.environ
    limit = settings.max_upload_bytes
    encoding = environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding != "identity" and encoding not in INFLATE_WBITS:
        raise HttpError(
            415, "unsupported_encoding", f"unsupported Content-Encoding {encoding[:40]!r}"
        )
    length = get_content_length(environ)
    if length is not None and length > limit:
        raise _too_large("the request body", limit)
    if length is not None and encoding == "identity" and json_prefix is None:
        body: bytes = environ["wsgi.input"].read(length)  # the common case: one read, in the limit
        return body
    chunks = _received(environ, length, limit)
    if encoding in INFLATE_WBITS:
        chunks = _inflated(chunks, encoding, limit)
    if json_prefix is not None:
        chunks = _within_value_budget(chunks, json_prefix, settings.max_batch)
    return b"".join(chunks)


def load_json(data: bytes, what: str = "request body") -> object:
    """Parse a JSON document from raw bytes; BadRequest (never a 500) when it is not JSON."""
    if not data:
        raise BadRequest(f"empty {what}: send a JSON document")
    try:
        # The app's one decoder (json_provider uses it too): the same values as json.loads.
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError) as error:  # RecursionError: absurdly deep
        raise BadRequest(f"{what} is not valid JSON: {str(error)[:200]}") from None


def _too_large(what: str, limit: int) -> HttpError:
    return HttpError(413, "payload_too_large", f"{what} exceeds {limit} bytes")


def _received(environ: dict[str, Any], length: int | None, limit: int) -> Iterator[bytes]:
    """The body as the client sends it, in chunks, never more than ``limit`` bytes of it."""
    if length is None and not environ.get("wsgi.input_terminated"):
        return  # a server that does not delimit chunked bodies: nothing can be read safely
    stream = environ["wsgi.input"]
    remaining = length
    received = 0
    while remaining is None or remaining > 0:
        chunk = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not chunk:
            return
        received += len(chunk)
        if received > limit:
            raise _too_large("the request body", limit)
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def _inflated(chunks: Iterator[bytes], encoding: str, limit: int) -> Iterator[bytes]:
    """Decompress as the chunks come, stopping one byte past the limit (413): never a bomb whole."""
    inflater = zlib.decompressobj(INFLATE_WBITS[encoding])
    produced = 0
    try:
        for chunk in chunks:
            data = chunk
            while data and not inflater.eof:
                # At most a chunk per step: the checks downstream see the body as it grows.
                piece = inflater.decompress(data, min(CHUNK, limit + 1 - produced))
                produced += len(piece)
                if produced > limit:
                    raise _too_large(f"the {encoding}-decompressed body", limit)
                yield piece
                data = inflater.unconsumed_tail
        rest = inflater.flush()
    except zlib.error as error:
        raise BadRequest(f"the {encoding} body cannot be decompressed: {error}") from None
    if produced + len(rest) > limit:
        raise _too_large(f"the {encoding}-decompressed body", limit)
    if not inflater.eof:
        raise BadRequest(f"the {encoding} body is truncated")
    yield rest


def _within_value_budget(chunks: Iterator[bytes], prefix: int, batch: int) -> Iterator[bytes]:
    """Pass the chunks on, refusing (413) a JSON part holding more values than a full batch."""
    # n values take n - 1 commas however the lists nest; strings in a tensor request are few.
    commas = batch * IMAGE_SIDE * IMAGE_SIDE + STRUCTURE_COMMAS
    seen = 0
    counted = 0
    for chunk in chunks:
        if prefix < 0 or counted < prefix:
            part = chunk if prefix < 0 else chunk[: prefix - counted]
            counted += len(part)
            seen += part.count(b",")
            if seen > commas:
                raise HttpError(
                    413,
                    "payload_too_large",
                    f"the JSON body holds more values than {batch} images",
                )
        yield chunk
