"""RFC 9110/9112 conformance of the worker over raw sockets: framing, limits, smuggling inputs.

Numbers in the names are issue 22's cases.
"""

import json
import threading

import pytest

from tests.http1.client import Client, predict_request
from tests.http1.conftest import LIMIT

pytestmark = pytest.mark.slow
GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def exchange(server, request: bytes) -> tuple[int, dict, bytes]:
    with Client(server.port) as client:
        client.send(request)
        return client.response()


def refused(server, request: bytes, status: int) -> None:
    """The request gets `status` in the app's JSON error shape, and the connection closes."""
    with Client(server.port) as client:
        client.send(request)
        got, headers, body = client.response()
        assert got == status, body
        assert headers["connection"] == "close"
        assert json.loads(body)["error"]["code"]
        assert client.closed()


# -- the classic smuggling inputs: llhttp refuses them, the worker answers 400 and closes ------


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="CL+TE",
        ),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 4\r\n\r\n0\r\n\r\n",
            id="TE+CL",
        ),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            b"Content-Length: 2\r\n\r\nab",
            id="duplicate-CL",
        ),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab", id="CL-list"
        ),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab", id="CL+"
        ),
        pytest.param(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", id="CL-x"),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\nab", id="CL-space"
        ),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n",
            id="chunk-size",
        ),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nabc\r\n0\r\n\r\n",
            id="chunk-overrun",
        ),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"fffffffffffffffff\r\n",
            id="chunk-overflow",
        ),
        pytest.param(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
            id="TE-vtab",
        ),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", id="obs-fold"),
        pytest.param(b"GET /healthz HTTP/1.1\nHost: x\n\n", id="bare-LF"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", id="bare-LF-header"),
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="garbage"),
    ],
)
def test_smuggling_inputs_get_400_and_a_close(server, request_bytes):
    refused(server, request_bytes, 400)


# -- 7, 8: what follows a request that closes is not served -------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\n\r\n",
        # RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding closes after it, keep-alive or not.
        b"POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        b"0\r\n\r\n",
    ],
    ids=["7-connection-close", "7-http-1.0", "8-http-1.0-chunked"],
)
def test_a_request_that_closes_is_served_and_what_follows_is_not(server, first):
    with Client(server.port) as client:
        client.send(first + GET)
        status, headers, _ = client.response()
        rest = client.rest()
    assert status in (200, 405)  # POST /healthz is the app's 405, still an answer
    assert headers["connection"] == "close"
    assert rest == b""


# -- 9: limits on the head, however the bytes arrive --------------------------------------------


def in_pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def sent_in(client: Client, data: bytes, piece: int) -> None:
    for part in in_pieces(data, piece):
        client.send(part)


LONG_TARGET = b"GET /healthz?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
LONG_FIELD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n"
FIELD_9K = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9_000 + b"\r\n\r\n"
HEAD_70K = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"a" * 7000 + b"\r\n" * 0
MANY_FIELDS = (
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 7000) for i in range(10))
    + b"\r\n"
)
HEADERS_101 = (
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: a\r\n" % i for i in range(100))
    + b"\r\n"
)


@pytest.mark.parametrize("piece", [1 << 20, 1000], ids=["one-send", "1000-byte-sends"])
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (LONG_TARGET, 414),
        (LONG_FIELD, 431),
        (FIELD_9K, 431),
        (MANY_FIELDS, 431),
        (HEADERS_101, 431),
    ],
    ids=["target-70k", "field-70k", "field-9k", "head-70k", "headers-101"],
)
def test_9_oversized_heads_are_refused(server, request_bytes, status, piece):
    with Client(server.port) as client:
        sender = threading.Thread(target=sent_in, args=(client, request_bytes, piece))
        sender.start()
        got, headers, body = client.response()
        sender.join(timeout=10)
    assert got == status, body
    assert headers["connection"] == "close"


def test_9_heads_within_the_limits_are_served(server):
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 600) for i in range(99))
    request = b"GET /healthz?" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"
    assert exchange(server, request)[0] == 200


# -- 10, 11: Host and the request target --------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    ],
    ids=["missing", "two", "space", "slash", "two-on-1.0"],
)
def test_10_a_missing_duplicate_or_invalid_host_is_400(server, head):
    refused(server, head, 400)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: \r\n\r\n",
        b"GET http://127.0.0.1:8000/healthz HTTP/1.1\r\nHost: ignored\r\n\r\n",
        b"GET http://127.0.0.1/healthz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    ids=["1.0-without", "ipv4", "ipv6", "empty", "11-absolute", "11-absolute-query"],
)
def test_10_11_valid_hosts_and_absolute_targets_are_served(server, head):
    assert exchange(server, head)[0] == 200


# -- 12: Expect: 100-continue -------------------------------------------------------------------


def test_12_expect_on_http_1_0_gets_no_100(server, image):
    request = predict_request(image, "Expect: 100-continue\r\n").replace(b"HTTP/1.1", b"HTTP/1.0")
    assert exchange(server, request)[0] == 200


def test_12_expect_is_answered_only_once_the_request_is_current(server, image):
    head, _, body = predict_request(image, "Expect: 100-continue\r\n").partition(b"\r\n\r\n")
    with Client(server.port) as client:
        client.send(GET + head + b"\r\n\r\n")
        assert client.response()[0] == 200  # the GET's answer comes first
        assert client.response()[0] == 100
        client.send(body)
        assert client.response()[0] == 200


def test_12_expect_100_continue_is_answered_before_the_body(server, image):
    head, _, body = predict_request(image, "Expect: 100-continue\r\n").partition(b"\r\n\r\n")
    with Client(server.port) as client:
        client.send(head + b"\r\n\r\n")
        assert client.response()[0] == 100
        client.send(body)
        assert client.response()[0] == 200


# -- 14: early errors are read by the client, not reset -----------------------------------------


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: %d\r\n\r\n" % (LIMIT * 4),
            413,
        ),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100_000, 431),
    ],
    ids=["413", "431"],
)
def test_14_an_early_error_is_read_while_the_client_still_sends(server, head, status):
    with Client(server.port) as client:
        client.send(head)
        sender = threading.Thread(target=client.send, args=(b"b" * (LIMIT * 2),))
        sender.start()
        got, _, body = client.response()
        sender.join(timeout=10)
    assert got == status
    assert json.loads(body)["error"]["code"]


# -- 15: versions, methods, codings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo, chunked\r\n\r\n"
            b"0\r\n\r\n",
            501,
        ),
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ],
    ids=["TE-foo-chunked", "TE-gzip", "unknown-method", "HTTP/2.0"],
)
def test_15_unsupported_codings_methods_and_versions(server, request_bytes, status):
    refused(server, request_bytes, status)


def test_15_http_1_2_is_served_as_1_1(server):
    status, headers, _ = exchange(server, b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n")
    assert status == 200
    assert headers["connection"] == "keep-alive"


@pytest.mark.parametrize("request_bytes", [b"GET /healthz\r\n", b"GET /healthz HTTP/0.9\r\n\r\n"])
def test_15_http_0_9_gets_no_http_1_1_head(server, request_bytes):
    with Client(server.port) as client:
        client.send(request_bytes)
        answer = client.rest()
    assert not answer.startswith(b"HTTP/")
