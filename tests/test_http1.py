"""HTTP/1.1 without a server: real httptools parsing into Connection, the environ, the framing."""

import socket
from types import SimpleNamespace

import httptools
import pytest

from service.http1 import (
    MAX_FIELD,
    MAX_FRAMING,
    Connection,
    Refusal,
    frame,
    refusal_of,
    wsgi_environ,
)

LIMIT = 1000  # the body limit charged to the budget
DATE = b"Mon, 30 Nov 2026 19:00:00 GMT"


@pytest.fixture
def budget() -> SimpleNamespace:
    """What the worker offers a connection: the body limit and its count of buffered bytes."""
    return SimpleNamespace(max_body=LIMIT, buffered=0)


@pytest.fixture
def conn(budget):
    sock, peer = socket.socketpair()
    with sock, peer:
        yield Connection(budget, sock, ("10.1.2.3", 54321), ("127.0.0.1", 8000))


def test_the_environ_follows_pep_3333(conn):
    body = b"hello, world"
    conn.parser.feed_data(
        b"POST /models/a%20b/predict?version=2 HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n"
        % (len(body), body)
    )
    (request,) = conn.ready
    environ = wsgi_environ(conn, request)
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["PATH_INFO"] == "/models/a b/predict"
    assert environ["RAW_URI"] == "/models/a%20b/predict?version=2"
    assert environ["QUERY_STRING"] == "version=2"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8000")
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("10.1.2.3", "54321")
    assert environ["CONTENT_TYPE"] == "image/png"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_TRANSFER_ENCODING" not in environ  # the body arrives de-chunked
    assert environ["CONTENT_LENGTH"] == str(len(body))
    assert environ["wsgi.input"].read() == body


def test_repeated_headers_are_joined_and_underscored_names_dropped(conn):
    conn.parser.feed_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: a\r\nX-Forwarded-For: b\r\n"
        b"X_Forwarded_For: spoofed\r\n\r\n"
    )
    environ = wsgi_environ(conn, conn.ready[0])
    assert environ["HTTP_X_FORWARDED_FOR"] == "a,b"


def test_bodies_are_charged_to_the_budget_until_one_is_too_large(conn, budget):
    conn.parser.feed_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde")
    assert budget.buffered == 5
    assert not conn.last_closes
    conn.parser.feed_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1))
    first, second = conn.ready
    assert (first.too_large, second.too_large) == (False, True)
    assert not second.keep_alive  # the 413 closes the connection
    assert second.size == LIMIT + 1
    assert budget.buffered == 5  # the declared body is never buffered
    assert conn.last_closes  # the 413 closes: nothing after it is parsed


def test_a_chunked_body_over_the_limit_is_given_back_to_the_budget(conn, budget):
    chunk = b"x" * 400
    conn.parser.feed_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(3):
        conn.parser.feed_data(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    (request,) = conn.ready
    assert request.too_large
    assert budget.buffered == 0
    assert conn.last_closes


@pytest.mark.parametrize(("version", "owed"), [(b"1.1", True), (b"1.0", False)])
def test_expect_100_continue_is_owed_to_http_1_1_only(conn, version, owed):
    conn.parser.feed_data(
        b"POST / HTTP/%s\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n" % version
    )
    assert conn.request().expect_continue is owed
    assert not conn.ready  # the worker sends it once the request is current
    assert not conn.outbox


def refusal(conn, data: bytes) -> Refusal:
    with pytest.raises(httptools.HttpParserError) as caught:
        conn.parser.feed_data(data)
    return refusal_of(caught.value, data)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", b"400 Bad Request"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", b"400 Bad Request"),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", b"400 Bad Request"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n", b"414 URI Too Long"),
        (
            b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
            b"431 Request Header Fields Too Large",
        ),
        (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", b"505 HTTP Version Not Supported"),
        (b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", b"501 Not Implemented"),
        (b"FOO BAR\r\n\r\n", b"400 Bad Request"),
        (b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", b"400 Bad Request"),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", b"501 Not Implemented"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
            b"501 Not Implemented",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"400 Bad Request",
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n", b"417 Expectation Failed"),
        (b"GET /#f HTTP/1.1\r\nHost: a\r\n\r\n", b"400 Bad Request"),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", b"400 Bad Request"),
        (b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", b"400 Bad Request"),
    ],
)
def test_requests_the_server_must_refuse(conn, data, status):
    assert refusal(conn, data).status == status


CHUNKED = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_trailers_are_counted_but_never_joined_to_the_headers(conn):
    conn.feed(CHUNKED + b"2\r\nab\r\n0\r\nHost: b\r\nX-T: 1\r\n\r\n")
    (request,) = conn.ready
    assert request.headers == [(b"Host", b"a"), (b"Transfer-Encoding", b"chunked")]
    assert request.fields == 4
    assert b"".join(request.body) == b"ab"


@pytest.mark.parametrize("piece", [100, 5000, 1 << 20])
def test_chunk_framing_past_its_cap_is_refused_however_it_arrives(conn, piece):
    # Twice the cap: the slice that ends the head and the one that ends the body go uncounted.
    data = CHUNKED + b"1;" + b"e" * (2 * MAX_FRAMING) + b"\r\nx\r\n0\r\n\r\n"
    pieces = [data[start : start + piece] for start in range(0, len(data), piece)]

    def feed_all() -> None:
        for part in pieces:
            conn.feed(part)

    with pytest.raises(Refusal, match="chunk extensions"):
        feed_all()


def test_chunk_framing_within_its_cap_is_parsed(conn):
    data = CHUNKED + b"".join(b"1;e=%d\r\n%d\r\n" % (i, i % 10) for i in range(900))
    conn.feed(data + b"0\r\n\r\n")
    (request,) = conn.ready
    assert request.size == 900
    assert request.chunks == 901  # the last chunk's size line counts too


def test_a_header_line_arriving_in_pieces_is_limited_before_it_ends(conn):
    conn.parser.feed_data(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: ")
    conn.count_head(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: ")
    piece = b"a" * 1000
    for _ in range(MAX_FIELD // len(piece)):
        conn.parser.feed_data(piece)
        conn.count_head(piece)
    conn.parser.feed_data(piece)
    with pytest.raises(Refusal) as caught:
        conn.count_head(piece)
    assert caught.value.status == b"431 Request Header Fields Too Large"


def test_an_absolute_form_target_gives_its_path_and_host(conn):
    conn.parser.feed_data(b"GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n")
    environ = wsgi_environ(conn, conn.ready[0])
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/a/b", "c=d")
    assert environ["HTTP_HOST"] == "example.com:8080"


@pytest.mark.parametrize(
    ("data", "keep"),
    [
        (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", True),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
            b"0\r\n\r\n",
            False,
        ),
    ],
    ids=["1.2-as-1.1", "1.0-chunked-closes"],
)
def test_versions_and_keep_alive(conn, data, keep):
    conn.parser.feed_data(data)
    (request,) = conn.ready
    assert request.keep_alive is keep


def answer(conn, request_bytes: bytes, status: str, headers, body: bytes, keep: bool) -> bytes:
    conn.parser.feed_data(request_bytes)
    head, with_body = frame(conn.ready[-1], status, headers, len(body), keep, DATE)
    return head + body if with_body else head


def test_framing_headers_are_the_worker_s(conn):
    framed = answer(
        conn,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", "99"), ("Connection", "close")],
        b"body",
        True,
    )
    assert framed == (
        b"HTTP/1.1 200 OK\r\nDate: " + DATE + b"\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 4\r\nConnection: keep-alive\r\n\r\nbody"
    )


def test_head_keeps_the_app_s_length_and_sends_no_body(conn):
    framed = answer(
        conn, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "200 OK", [("Content-Length", "4")], b"", False
    )
    assert framed == (
        b"HTTP/1.1 200 OK\r\nDate: " + DATE + b"\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
    )


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified", "101 Switching"])
def test_statuses_without_a_body_get_neither_length_nor_body(conn, status):
    framed = answer(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", status, [], b"ignored", True)
    assert framed == (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\nDate: "
        + DATE
        + b"\r\nConnection: keep-alive\r\n\r\n"
    )
