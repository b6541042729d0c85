"""The query string of an image request: which version answers, and how to read the images."""

from collections.abc import Mapping
from typing import TypedDict

from flask import request

from service.contract import parse_version, validate_alias
from service.preprocess import parse_invert, parse_mode


class ImageQuery(TypedDict):
    """How to read the uploaded images: invert= and mode=."""

    invert: str
    mode: str


class ModelQuery(ImageQuery):
    """Which version answers, and how to read the images."""

    version: int | None
    alias: str | None


def model_query() -> ModelQuery:
    """version= / alias= / invert= / mode= from the query string, validated."""
    # Most requests have no query string: then Werkzeug's MultiDict is never built.
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
