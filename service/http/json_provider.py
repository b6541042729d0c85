"""The app's one JSON encoder (orjson) and one decoder (msgspec), installed as Flask's provider."""

from typing import Any

import msgspec
import orjson
from flask import Response
from flask.json.provider import JSONProvider

JSON = "application/json"
# NumPy arrays (the /preprocess pixels) encode as nested lists, float32 in its shortest form.
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encode(value: Any, newline: bool = True) -> bytes:
    """A JSON document's bytes; newline-ended, as every JSON answer is, unless framed otherwise."""
    return orjson.dumps(value, option=_OPTIONS | orjson.OPT_APPEND_NEWLINE if newline else _OPTIONS)


def json_response(value: Any) -> Response:
    """A 200 answer holding one JSON document."""
    return Response(encode(value), mimetype=JSON)


class OrjsonProvider(JSONProvider):
    """What jsonify and request.get_json use: the encoder and decoder above, keys kept in order."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return encode(obj, newline=False).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return msgspec.json.decode(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return json_response(self._prepare_response_obj(args, kwargs))
