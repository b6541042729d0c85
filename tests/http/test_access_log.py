"""The access log via Flask's test client: one JSON line per request, X-Request-ID round trip."""

import json
import multiprocessing

import pytest

from service.http.access_log import ids
from tests.conftest import MODEL
from tests.images import dark_images, png


class StderrLines(list):
    """The JSON lines written to file descriptor 2 so far (pytest captures it)."""

    def __init__(self, capfd) -> None:
        super().__init__()
        self.capfd = capfd

    def __getitem__(self, index):
        self.read()
        return super().__getitem__(index)

    def __iter__(self):
        self.read()
        return super().__iter__()

    def read(self) -> None:
        self.extend(line for line in self.capfd.readouterr().err.splitlines() if line)


@pytest.fixture
def lines(capfd):
    capfd.readouterr()  # only what the test's requests write
    return StderrLines(capfd)


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


def _id_in_child() -> str:
    return ids.next()  # a module function: pickled by name, so the child uses its own `ids`


def test_generated_ids_are_unique_and_differ_in_a_forked_worker(client, lines):
    seen = {client.get("/healthz").headers["X-Request-ID"] for _ in range(50)}
    assert len(seen) == 50
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        child = pool.apply(_id_in_child)
    assert child not in seen
    assert child[:16] != ids.next()[:16]
