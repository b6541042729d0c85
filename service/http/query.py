"""The query string of an image request: which version answers, and how to read the images."""

from typing import TypedDict

from flask import request

from service.contract import parse_version, validate_alias
from service.preprocess import DEFAULT_READING, Reading, parse_reading


class ModelQuery(TypedDict):
    """Which version answers (version= or alias=), and how to read the images."""

    version: int | None
    alias: str | None
    reading: Reading


DEFAULT_QUERY = ModelQuery(version=None, alias=None, reading=DEFAULT_READING)


def model_query() -> ModelQuery:
    """version= / alias= / invert= / mode= from the query string, validated."""
    # Most requests have no query string: then Werkzeug's MultiDict is never built.
    if not request.environ.get("QUERY_STRING"):
        return DEFAULT_QUERY
    args = request.args
    return {
        "version": parse_version(args["version"]) if "version" in args else None,
        "alias": validate_alias(args["alias"]) if "alias" in args else None,
        "reading": image_query(),
    }


def image_query() -> Reading:
    """invert= / mode= from the query string, validated: how to read the uploaded images."""
    args = request.args
    return parse_reading(args.get("invert", "auto"), args.get("mode", "auto"))
