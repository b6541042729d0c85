"""The access log via Flask's test client: one JSON line per request, X-Request-ID round trip."""

import json
import logging

import pytest

from service.http.access_log import log as access_log
from tests.conftest import MODEL
from tests.images import dark_images, png


class FakeHandler(logging.Handler):
    """Keeps the formatted lines instead of writing them anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines():
    handler = FakeHandler()
    access_log.addHandler(handler)
    yield handler.lines
    access_log.removeHandler(handler)


def test_one_json_line_per_request_with_model_version(client, lines):
    response = client.post(
        "/predict",
        data=png(dark_images(1)[0]),
        content_type="image/png",
        headers={"X-Request-ID": "abc-123"},
    )
    assert response.headers["X-Request-ID"] == "abc-123"
    (line,) = lines
    entry = json.loads(line)
    assert entry["request_id"] == "abc-123"
    assert entry["method"] == "POST"
    assert entry["path"] == "/predict"
    assert entry["status"] == 200
    assert entry["model"] == f"{MODEL}:1"
    assert entry["duration_ms"] > 0


@pytest.mark.parametrize(
    "given", [None, "", "x" * 129, "bad id with spaces", 'quote"s', "new\\nline", "ünïcode"]
)
def test_missing_or_unsafe_ids_are_replaced_by_a_fresh_uuid(client, lines, given):
    headers = {"X-Request-ID": given} if given is not None else {}
    response = client.get("/nope", headers=headers)
    generated = response.headers["X-Request-ID"]
    assert generated != given
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    entry = json.loads(lines[-1])
    assert entry["request_id"] == generated
    assert entry["status"] == 404
    assert entry["model"] is None
