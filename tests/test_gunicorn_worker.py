"""BufferedWorker under real gunicorn, over raw sockets: framing, limits, errors, keep-alive."""

import contextlib
import json
import os
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import MODEL, tiny_registry
from tests.e2e.server import GunicornServer
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


class Client:
    """A raw HTTP/1.1 connection that reads responses one at a time, keeping what follows."""

    def __init__(self, server) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.data = b""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send, ignoring a server that already answered and closed."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"connection closed with {self.data[:200]!r} unread"
        self.data += chunk

    def response(self, head_only: bool = False) -> tuple[int, dict, bytes]:
        """The next response: (status, headers, body); a HEAD answer has no body to read."""
        while b"\r\n\r\n" not in self.data:
            self._fill()
        head, _, self.data = self.data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = 0 if head_only else int(headers.get("content-length", 0))
        while len(self.data) < length:
            self._fill()
        body, self.data = self.data[:length], self.data[length:]
        return int(lines[0].split()[1]), headers, body

    def closed(self) -> bool:
        """True when the server closed the connection (after what was already read)."""
        return not self.data and self.sock.recv(1) == b""


def predict_request(image: bytes, extra: str = "") -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(image)}\r\n{extra}\r\n"
    ).encode() + image


def test_pipelined_requests_are_answered_in_order_on_one_connection(server, image):
    with Client(server) as client:
        client.send(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            + predict_request(image)
            + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        statuses = [client.response()[0] for _ in range(3)]
    assert statuses == [200, 200, 404]


def test_a_request_sent_a_byte_at_a_time_is_answered(server, image):
    with Client(server) as client:
        for byte in predict_request(image):
            client.send(bytes([byte]))
        status, headers, body = client.response()
    assert status == 200
    assert headers["connection"] == "keep-alive"
    assert json.loads(body)["model"]["name"] == MODEL


def test_chunked_body_is_decoded(server, image):
    half = len(image) // 2
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (image[:half], image[half:]))
    with Client(server) as client:
        client.send(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"
        )
        status, _, answer = client.response()
    assert status == 200, answer
    assert len(json.loads(answer)["predictions"]) == 1


def test_expect_100_continue_is_answered_before_the_body(server, image):
    with Client(server) as client:
        request = predict_request(image, "Expect: 100-continue\r\n")
        head, _, body = request.partition(b"\r\n\r\n")
        client.send(head + b"\r\n\r\n")
        assert client.response()[0] == 100
        client.send(body)
        assert client.response()[0] == 200


def test_a_declared_body_over_the_limit_gets_413_without_being_sent(server):
    with Client(server) as client:
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
    with Client(server) as client:
        client.send(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(LIMIT // len(chunk) + 2):
            client.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, _, body = client.response()
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"POST /predict HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /predict HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ],
)
def test_malformed_requests_get_a_json_400_and_a_close(server, request_bytes):
    with Client(server) as client:
        client.send(request_bytes)
        status, headers, body = client.response()
    assert status == 400
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_an_oversized_head_gets_431(server):
    with Client(server) as client:
        client.send(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(80):
            client.send(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        status, _, body = client.response()
    assert status == 431
    assert json.loads(body)["error"]["code"] == "headers_too_large"


def test_head_keeps_the_length_and_sends_no_body(server):
    with Client(server) as client:
        client.send(
            b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        head_status, head_headers, _ = client.response(head_only=True)
        status, headers, body = client.response()  # right after the HEAD answer's blank line
    assert (head_status, status) == (200, 200)
    assert head_headers["content-length"] == headers["content-length"] == str(len(body))


def test_http_1_0_closes_after_the_answer(server):
    with Client(server) as client:
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
        (worker,) = map(
            int,
            Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
            .read_text()
            .split(),
        )
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
