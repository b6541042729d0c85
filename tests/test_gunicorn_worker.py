"""BufferedWorker under real gunicorn, over raw sockets: framing, limits, errors, keep-alive."""

import io
import json
import os
import socket
import time
from pathlib import Path

import flask_swagger_ui
import pytest
import requests
from PIL import Image, ImageDraw

from tests.conftest import MODEL, tiny_registry
from tests.e2e.server import GunicornServer
from tests.http1.client import Client, predict_request, worker_pids
from tests.images import dark_images, png

pytestmark = pytest.mark.slow
LIMIT = 64 * 1024  # FASHION_MAX_UPLOAD_BYTES for this server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker")
    registry = tiny_registry(tmp)
    with GunicornServer(
        registry.root, tmp / "server.log", workers=1, FASHION_MAX_UPLOAD_BYTES=str(LIMIT)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def image() -> bytes:
    return png(dark_images(1)[0])


def test_pipelined_requests_are_answered_in_order_on_one_connection(server, image):
    with Client(server.port) as client:
        client.send(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            + predict_request(image)
            + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        statuses = [client.response()[0] for _ in range(3)]
    assert statuses == [200, 200, 404]


def test_a_request_sent_a_byte_at_a_time_is_answered(server, image):
    with Client(server.port) as client:
        for byte in predict_request(image):
            client.send(bytes([byte]))
        status, headers, body = client.response()
    assert status == 200
    assert headers["connection"] == "keep-alive"
    assert json.loads(body)["model"]["name"] == MODEL


def test_a_head_sent_a_line_at_a_time_is_answered(server):
    """Each header line in its own read: none may be taken for an HTTP/0.9 request line."""
    with Client(server.port) as client:
        for line in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"Accept: */*\r\n", b"\r\n"):
            client.send(line)
            time.sleep(0.05)  # a pause between writes, so each line arrives in a read of its own
        status, _, body = client.response()
    assert status == 200, body


def test_chunked_body_is_decoded(server, image):
    half = len(image) // 2
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (image[:half], image[half:]))
    with Client(server.port) as client:
        client.send(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"
        )
        status, _, answer = client.response()
    assert status == 200, answer
    assert len(json.loads(answer)["predictions"]) == 1


def test_a_declared_body_over_the_limit_gets_413_without_being_sent(server):
    with Client(server.port) as client:
        client.send(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: %d\r\n\r\n" % (LIMIT + 1)
        )
        status, headers, body = client.response()
        assert client.closed()  # the rest of that body is not read
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_a_chunked_body_over_the_limit_gets_413(server):
    chunk = b"x" * 8192
    with Client(server.port) as client:
        client.send(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(LIMIT // len(chunk) + 2):
            client.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, _, body = client.response()
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_head_keeps_the_length_and_sends_no_body(server):
    with Client(server.port) as client:
        client.send(
            b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        head_status, head_headers, _ = client.response(head_only=True)
        status, headers, body = client.response()  # right after the HEAD answer's blank line
    assert (head_status, status) == (200, 200)
    assert head_headers["content-length"] == headers["content-length"] == str(len(body))


def test_a_static_file_is_sent_whole_and_in_ranges(server):
    assets = Path(flask_swagger_ui.__file__).parent / "dist"
    expected = (assets / "swagger-ui-bundle.js").read_bytes()
    url = f"{server.url}/docs/swagger-ui-bundle.js"
    with requests.Session() as http:
        whole = http.get(url, timeout=10)
        part = http.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
        head = http.head(url, timeout=10)
    assert whole.content == expected
    assert (part.status_code, part.content) == (206, expected[100:200])
    assert (head.headers["content-length"], head.content) == (str(len(expected)), b"")


def test_http_1_0_closes_after_the_answer(server):
    with Client(server.port) as client:
        client.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        status, headers, _ = client.response()
        assert client.closed()
    assert status == 200
    assert headers["connection"] == "close"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_full_worker_waits_idle_and_serves_once_idle_connections_time_out(tmp_path):
    registry = tiny_registry(tmp_path)
    with GunicornServer(
        registry.root,
        tmp_path / "server.log",
        workers=1,
        GUNICORN_CMD_ARGS="--worker-connections 4",
    ) as server:
        (worker,) = worker_pids(server.process.pid)
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        before = cpu_seconds(worker)
        started = time.monotonic()
        # Waits in the listen backlog until keep-alive (5 s) closes the idle ones.
        status = requests.get(f"{server.url}/healthz", timeout=30).status_code
        waited = time.monotonic() - started
        spent = cpu_seconds(worker) - before
        for sock in idle:
            sock.close()
    assert status == 200
    assert waited > 3  # it did wait for a free slot
    assert spent < 0.5 * waited  # without spinning on the ready listener meanwhile


def large_picture() -> bytes:
    """A 4096×4096 PNG of a dark square on white: small to send, ~0.2 s to decode."""
    picture = Image.new("L", (4096, 4096), 255)
    ImageDraw.Draw(picture).rectangle((1000, 1000, 3000, 3000), fill=0)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("timeout", "budget", "stopped_after"),
    [
        pytest.param("4", None, (2, 4), id="half-the-timeout"),
        # The work outlives gunicorn's timeout: the heartbeat thread keeps the worker alive.
        pytest.param("2", "5", (5, 9), id="budget-past-the-timeout"),
    ],
)
def test_a_request_past_its_budget_gets_503_is_logged_and_the_worker_lives(
    tmp_path, timeout, budget, stopped_after
):
    """128 pictures of 4096×4096 (~0.2 s each, ~25 s in all) against a budget of a few s."""
    registry = tiny_registry(tmp_path)
    picture = large_picture()
    files = [("image", (f"{i}.png", picture, "image/png")) for i in range(128)]
    env = {"FASHION_TIMEOUT": timeout} | ({"FASHION_REQUEST_TIMEOUT": budget} if budget else {})
    with GunicornServer(registry.root, tmp_path / "server.log", workers=1, **env) as server:
        (worker,) = worker_pids(server.process.pid)
        started = time.monotonic()
        answer = requests.post(f"{server.url}/predict", files=files, timeout=30)
        elapsed = time.monotonic() - started
        after = requests.post(f"{server.url}/predict", files=files[:1], timeout=10).status_code
        assert worker_pids(server.process.pid) == [worker]
        log = server.log()
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "timeout"
    assert int(answer.headers["Retry-After"]) >= 1
    assert stopped_after[0] < elapsed < stopped_after[1]  # stopped at its budget, not later
    assert after == 200
    assert "WORKER TIMEOUT" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"ts"')]
    assert [line["status"] for line in lines if line.get("path") == "/predict"] == [503, 200]
