"""Hostile and odd clients beyond issue 22's list, each case answered as RFC 9110/9112 says.

Bytes the RFC forbids are refused with a 4xx/5xx JSON answer and a close; bytes it allows are
served; whatever a client does, the worker lives and its descriptors and memory come back.
"""

import json
import re
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.http1.client import Client, worker_pids
from tests.http1.conftest import LIMIT, start
from tests.http1.test_conformance import GET, refused
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
POST_CHUNKED = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
ASSET = b"/docs/swagger-ui-bundle.js"


def chunked(image: bytes, size_prefix: bytes = b"", trailers: bytes = b"") -> bytes:
    """A POST /predict of a PNG in two chunks (each size written after `size_prefix`)."""
    half = len(image) // 2
    chunks = b"".join(
        size_prefix + b"%x\r\n%s\r\n" % (len(part), part) for part in (image[:half], image[half:])
    )
    return (
        POST_CHUNKED + b"Content-Type: image/png\r\n\r\n" + chunks + b"0\r\n" + trailers + b"\r\n"
    )


def pid_of(server) -> int:
    (pid,) = worker_pids(server.process.pid)
    return pid


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


# -- bytes the RFC forbids: 400 (or the status named), then a close ------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # RFC 9112 §2.2: a bare CR outside the line ending is invalid anywhere.
        (b"GET /healthz\rX HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400),
        # RFC 9110 §5.5: NUL, CR, LF and other controls are invalid in a field value; a target
        # is visible characters only (RFC 3986).
        (b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /heal\x01thz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400),
        # RFC 9110 §5.1: a field name is a token.
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX@A: b\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n(A): b\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX\x00A: b\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n", 400),
        # RFC 9112 §2.2: whitespace before the first field is refused (it could hide a field).
        (b"GET /healthz HTTP/1.1\r\n Host: x\r\n\r\n", 400),
        # RFC 9112 §3: one SP between the parts of the request line (a tab is no separator).
        (b"GET\t/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        # RFC 9112 §7.1: chunk-size = 1*HEXDIG, nothing else.
        (POST_CHUNKED + b"\r\n+5\r\nhello\r\n0\r\n\r\n", 400),
        (POST_CHUNKED + b"\r\n-5\r\nhello\r\n0\r\n\r\n", 400),
        (POST_CHUNKED + b"\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
        (POST_CHUNKED + b"\r\n" + b"1" * 40 + b"\r\nhello\r\n0\r\n\r\n", 400),
        # RFC 9112 §6.1: chunked is applied once, last; identity is no longer a coding.
        (POST_CHUNKED + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
            b"0\r\n\r\n",
            400,
        ),
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        # RFC 9110 §10.1.1: an expectation the server cannot meet is 417.
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417),
        # RFC 9110 §9.3.6: no tunnels here; RFC 9112 §3.2.4: "*" is for OPTIONS alone.
        (b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", 501),
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        # RFC 9112 §3.2: a request target never carries a fragment.
        (b"GET /healthz#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        # RFC 9112 §3.2.2: absolute-form is for http and https URIs.
        (b"GET ftp://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET http://user@x/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        # The HTTP/2 connection preface (RFC 9113 §3.4) on an HTTP/1.1 port: not HTTP/1.x.
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ],
    ids=[
        "CR-in-target",
        "CR-in-value",
        "CR-after-value",
        "NUL-in-target",
        "SOH-in-target",
        "NUL-in-value",
        "SOH-in-value",
        "DEL-in-value",
        "space-in-name",
        "at-in-name",
        "parens-name",
        "empty-name",
        "NUL-in-name",
        "tab-before-colon",
        "space-before-first-field",
        "tab-separator",
        "chunk-plus",
        "chunk-minus",
        "chunk-0x",
        "chunk-40-digits",
        "TE-twice",
        "TE-chunked-chunked",
        "TE-identity",
        "expect-other",
        "CONNECT",
        "asterisk-GET",
        "fragment",
        "absolute-ftp",
        "absolute-userinfo",
        "h2-preface",
    ],
)
def test_forbidden_bytes_are_refused_and_the_connection_closed(server, request_bytes, status):
    refused(server, request_bytes, status)


# -- chunk extensions and trailers: parsed, bounded, never passed on ----------------------------


@pytest.mark.parametrize("piece", [1 << 20, 512], ids=["one-send", "512-byte-sends"])
@pytest.mark.parametrize(
    "body",
    [
        b"1;" + b"a" * 100_000 + b"\r\nx\r\n0\r\n\r\n",
        b"1" + b";a=b" * 25_000 + b"\r\nx\r\n0\r\n\r\n",
        b"".join(b"1;%s\r\nx\r\n" % (b"e" * 4000) for _ in range(30)) + b"0\r\n\r\n",
        b"1\r\nx\r\n0\r\nX-T: " + b"a" * 100_000 + b"\r\n\r\n",
        b"0" * 100_000 + b"1\r\nx\r\n0\r\n\r\n",
        b"1\r\nx\r\n0\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(2000)) + b"\r\n",
    ],
    ids=[
        "extension-100k",
        "extensions-25k",
        "extensions-in-30-chunks",
        "trailer-100k",
        "zeros-100k",
        "trailers-2000",
    ],
)
def test_chunk_extensions_and_trailers_are_capped(server, body, piece):
    """The extension DoS: llhttp skips extensions without buffering, so only a count of the
    bytes that are not data bounds them (16 KiB, as Node's parser allows)."""
    request = POST_CHUNKED + b"Content-Type: image/png\r\n\r\n" + body
    with Client(server.port) as client:
        sender = threading.Thread(
            target=lambda: [
                client.send(request[i : i + piece]) for i in range(0, len(request), piece)
            ]
        )
        sender.start()
        status, headers, answer = client.response()
        sender.join(timeout=20)
    assert status in (400, 431), answer
    assert headers["connection"] == "close"


def test_chunked_framing_the_rfc_allows_is_served(server, image):
    """Leading zeros in a chunk size, short extensions and trailers are valid (RFC 9112 §7.1)."""
    for request in (
        chunked(image, b"0000000000"),
        chunked(image).replace(b"\r\n\x89PNG", b';name="va lue";x\r\n\x89PNG', 1),
        chunked(image, trailers=b"X-Checksum: 1\r\nX-Other: 2\r\n"),
    ):
        with Client(server.port) as client:
            client.send(request)
            status, _, answer = client.response()
        assert status == 200, answer


def test_trailers_never_reach_the_app(server, image):
    """RFC 9110 §6.5.1: a trailer is not merged into the header section (it could pose as one)."""
    request = chunked(image, trailers=b"X-Request-ID: smuggled\r\nContent-Type: text/plain\r\n")
    with Client(server.port) as client:
        client.send(request)
        status, headers, answer = client.response()
    assert status == 200, answer
    assert headers["x-request-id"] != "smuggled"


# -- what the RFC allows is served ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # RFC 9112 §2.2: empty lines before a request line are ignored.
        (b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        # RFC 9112 §3: a recipient may split the request line on any run of whitespace.
        (b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        # RFC 9110 §5.5: obs-text in a field value is kept as opaque bytes.
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: caf\xe9 \xff\r\n\r\n", 200),
        # RFC 9110 §8.6: Content-Length is 1*DIGIT, leading zeros included.
        (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0002\r\n\r\nab", 405),
        # RFC 9112 §3.2.2: the target's authority replaces Host, whatever host it names.
        (b"GET http://elsewhere.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"GET https://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        # RFC 9110 §7.8: a server may ignore Upgrade and answer in HTTP/1.1 (no 101).
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            200,
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            400,  # the app's answer: no route takes a WebSocket
        ),
        # RFC 9110 §9.3.8: TRACE would echo the request (credentials included): not allowed.
        (b"TRACE /healthz HTTP/1.1\r\nHost: x\r\nCookie: secret\r\n\r\n", 405),
        # RFC 9110 §9.3.7: OPTIONS on a resource names its methods.
        (b"OPTIONS /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    ],
    ids=[
        "leading-CRLFs",
        "double-space",
        "obs-text",
        "CL-leading-zeros",
        "absolute-other-host",
        "absolute-https",
        "upgrade-h2c",
        "upgrade-websocket",
        "TRACE",
        "OPTIONS",
        "OPTIONS-asterisk",
    ],
)
def test_requests_the_rfc_allows_are_answered(server, request_bytes, status):
    with Client(server.port) as client:
        client.send(request_bytes)
        got, headers, body = client.response()
    assert got == status, body
    assert b"secret" not in body
    if got != 200 or headers.get("content-type") == "application/json":
        json.loads(body or b"{}")


@pytest.mark.parametrize(
    "target",
    [
        b"/%00",
        b"/healthz%00",
        b"/%2e%2e/%2e%2e/etc/passwd",
        b"/docs/..%2F..%2F..%2Fetc%2Fpasswd",
        b"/docs/%2e%2e/%2e%2e/service/settings.py",
        b"/%C0%AE%C0%AE/%C0%AE%C0%AE/etc/passwd",
        b"/%ff%fe",
        b"/%zz",
        b"/%",
        b"/models/fashion-mnist%2Fversions",
        b"/predict?version=%ff",
        b"/predict?version=%00",
    ],
)
def test_odd_percent_encodings_get_a_json_4xx_never_a_file_outside(server, target):
    method = b"POST" if target.startswith(b"/predict") else b"GET"
    request = method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    with Client(server.port) as client:
        client.send(request)
        status, headers, body = client.response()
    assert 400 <= status < 500, body
    assert json.loads(body)["error"]
    assert b"root:" not in body
    assert b"FASHION_" not in body
    assert headers["connection"] == "keep-alive"


def test_empty_lines_between_pipelined_requests_are_skipped(server):
    """RFC 9112 §2.2: at least one empty line before a request line is ignored."""
    with Client(server.port) as client:
        client.send(GET + b"\r\n\r\n" + GET + b"\r\n" + GET)
        statuses = [client.response()[0] for _ in range(3)]
    assert statuses == [200, 200, 200]


def test_head_answers_carry_the_length_and_no_body(server):
    with Client(server.port) as client:
        client.send(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
        status, head_headers, _ = client.response(head_only=True)
        got, get_headers, body = client.response()  # would be garbled by a stray HEAD body
    assert (status, got) == (200, 200)
    assert head_headers["content-length"] == get_headers["content-length"] == str(len(body))


def test_a_body_on_get_is_read_as_its_body_not_as_a_request(server):
    smuggled = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    with Client(server.port) as client:
        client.send(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
            + smuggled
            + GET
        )
        statuses = [client.response()[0] for _ in range(2)]
        client.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):  # nothing more: the body was not a third request
            client.response()
    assert statuses == [200, 200]


# -- clients that go away, half or whole ---------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "count"),
    [
        (GET, 1),
        (GET * 20, 20),  # more than one turn's worth of pipelined requests
        (b"GET " + ASSET + b" HTTP/1.1\r\nHost: x\r\n\r\n", 1),  # larger than socket buffers
    ],
    ids=["one", "twenty-pipelined", "large-answer"],
)
def test_a_half_closed_client_still_gets_every_answer(server, request_bytes, count):
    """RFC 9112 §9.6: a client may shut down writing after its last request and read on."""
    with Client(server.port, timeout=20) as client:
        client.send(request_bytes)
        client.sock.shutdown(socket.SHUT_WR)
        statuses = [client.response()[0] for _ in range(count)]
        assert client.closed()
    assert statuses == [200] * count


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or hostile client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_reset_mid_answer_costs_the_worker_nothing(server):
    pid = pid_of(server)
    fds = open_fds(pid)
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall((b"GET " + ASSET + b" HTTP/1.1\r\nHost: x\r\n\r\n") * 3)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        reset(sock)
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    wait_for(lambda: open_fds(pid) <= fds, "the worker to close the reset connections", 10)
    assert pid_of(server) == pid
    assert "Traceback" not in server.log()


def test_connect_close_churn_leaves_no_descriptor_behind(server, image):
    pid = pid_of(server)
    fds = open_fds(pid)
    partial = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"
    for index in range(600):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if index % 3 == 1:
            sock.sendall(partial)
        elif index % 3 == 2:
            sock.sendall(GET)
        (reset if index % 2 else socket.socket.close)(sock)
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    wait_for(lambda: open_fds(pid) <= fds, "the worker to close every churned connection", 10)
    assert pid_of(server) == pid


# -- slow and silent clients ---------------------------------------------------------------------


def test_a_head_dripping_a_byte_at_a_time_gets_408_within_the_head_timeout(server):
    """Slowloris on the head: the head timeout (10 s) runs from its first byte, not the last."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 100
    with Client(server.port, timeout=20) as client:
        started = time.monotonic()
        answer = b""
        for byte in request:
            client.send(bytes([byte]))
            client.sock.settimeout(0.25)  # the drip's pace: a byte each quarter second at most
            try:
                answer = client.sock.recv(4096)
            except TimeoutError:
                continue
            break
        elapsed = time.monotonic() - started
        client.sock.settimeout(5)
        client.data = answer
        status, headers, _ = client.response()
    assert status == 408
    assert headers["connection"] == "close"
    assert elapsed < 13


def test_an_idle_connection_that_sends_nothing_is_closed_at_keep_alive(server):
    with Client(server.port, timeout=20) as client:
        started = time.monotonic()
        assert client.rest() == b""  # closed without an answer: there was no request
        elapsed = time.monotonic() - started
    assert 3 < elapsed < 8  # keep-alive is 5 s


def test_connections_spread_over_the_workers(tmp_path):
    """Connections land on the worker holding fewer (the shared counts), not one taking all."""
    server = start(tmp_path, workers=2)
    try:
        seen: dict[int, int] = {}
        wait_for(lambda: len(server.worker_versions(seen)) == 2, "both workers to serve", 60)
        held: list[Client] = []
        pids: dict[int, int] = {}
        for _ in range(40):
            client = Client(server.port)
            client.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            pid = json.loads(client.response()[2])["pid"]
            pids[pid] = pids.get(pid, 0) + 1
            held.append(client)  # kept open: each counts against its worker
        for client in held:
            client.sock.close()
    finally:
        server.stop()
    assert len(pids) == 2
    assert min(pids.values()) >= 12, pids


def test_an_oversized_upload_on_a_kept_alive_connection_gets_413_after_its_forerunner(
    server, image
):
    with Client(server.port) as client:
        client.send(GET)
        assert client.response()[0] == 200
        client.send(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (LIMIT * 8)
        )
        sender = threading.Thread(target=client.send, args=(b"b" * LIMIT,))
        sender.start()
        status, headers, body = client.response()  # no 100 first: the body is not wanted
        sender.join(timeout=10)
    assert status == 413, body
    assert headers["connection"] == "close"
    assert re.search(rb'"code":\s*"', body)
