"""HTTP/1.1 for BufferedWorker: requests parsed incrementally, their WSGI environ, framed answers.

httptools (llhttp) calls back into Connection as bytes arrive and refuses the smuggling inputs
itself; the limits and request rules it leaves to the server are here, each raising Refusal.
The event loop that feeds the parser and sends the answers is service/gunicorn_worker.py.
"""

import io
import os
import re
import socket
import sys
import time
from collections import deque
from collections.abc import Iterable
from typing import IO, Any, Protocol
from urllib.parse import unquote_to_bytes

import httptools
import orjson

# Limits as nginx's large_client_header_buffers (8 KiB per line) and gunicorn's
# limit_request_fields (100) set them; RFC 9112 §3 answers a long target 414, RFC 6585 §5 a long
# header field or head 431. Checked on every read, however the bytes are split.
MAX_REQUEST_LINE = 8 * 1024
MAX_FIELD = 8 * 1024
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
# Chunk framing beyond the data (sizes, extensions, trailers, zeros before a size): llhttp skips
# it without buffering or limit, so a client could stream it forever; Node caps extensions at
# 16 KiB (its answer to that DoS), hyper trailers at 16 KiB. Counted per slice of a read.
MAX_FRAMING = 16 * 1024
FRAMING_PER_CHUNK = 24  # a chunk's own size line and CRLFs: up to 16 hex digits + 4
FEED_SLICE = 4096  # reads are parsed in slices of this while a head or chunked body is open
# A head must arrive whole within this long of its first byte (nginx's client_header_timeout,
# counted from the first byte rather than renewed by every read).
HEAD_TIMEOUT = 10.0
# A body must keep an average rate of MIN_BODY_RATE after a grace period, and end within
# BODY_TIMEOUT whatever its rate (Apache's mod_reqtimeout rule: a dripping byte does not renew).
BODY_GRACE = 10.0
MIN_BODY_RATE = 64 * 1024
BODY_TIMEOUT = 60.0
FOREVER = float("inf")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
KEEP_ALIVE, CLOSE = b"\r\nConnection: keep-alive\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
NO_BODY_STATUSES = (b"204", b"304")
FRAMING_HEADERS = ("content-length", "connection", "transfer-encoding")  # frame sets these
# Header names with "_" are dropped: after WSGI's "-" → "_" they could pose as another header.
UNDERSCORE = ord("_")
# RFC 9110 §7.2 Host = uri-host [":" port]: an IP literal, or a reg-name of unreserved,
# pct-encoded and sub-delims characters; empty is allowed (RFC 9112 §3.2).
HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(:[0-9]*)?")
# RFC 9112 §3 request-line, for telling an unknown method (501) from a malformed line (400).
REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ HTTP/[0-9]\.[0-9]\r?\n")
# An HTTP/0.9 request is its request line alone; llhttp would wait for headers that never come.
HTTP_0_9 = re.compile(rb"(\r?\n)*[!-~]+ [^ \r\n]+\r?\n")
# HTTP/0.9 had no status line or headers: the refusal is the bare body, as nginx answers it.
NO_HEAD = b""


class Refusal(Exception):
    """A request the server answers itself, in the app's error shape, then closes."""

    def __init__(self, status: bytes, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


BAD_REQUEST = b"400 Bad Request"
HEAD_TOO_LARGE = b"431 Request Header Fields Too Large"


def refusal_of(error: httptools.HttpParserError, data: bytes) -> Refusal:
    """What to answer a request llhttp refused (or a callback stopped), given the bytes read."""
    if isinstance(error.__context__, Refusal):
        return error.__context__
    if isinstance(error, httptools.HttpParserInvalidMethodError):
        # RFC 9110 §9.1: a well-formed request with a method the server does not know is 501.
        line = data.lstrip(b"\r\n")
        if REQUEST_LINE.match(line[: MAX_REQUEST_LINE + 32]):
            return Refusal(b"501 Not Implemented", "not_implemented", "unknown method")
    return Refusal(BAD_REQUEST, "bad_request", f"malformed HTTP: {error}")


class Budget(Protocol):
    """What bodies are charged to (the worker): the per-request limit, the bytes buffered."""

    max_body: int
    buffered: int


class Request:
    """One request as the parser delivers it."""

    __slots__ = (
        "body",
        "chunked",
        "chunks",
        "expect_continue",
        "fields",
        "framing",
        "headers",
        "host",
        "keep_alive",
        "method",
        "size",
        "started",
        "too_large",
        "url",
        "version",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.chunked = False
        self.chunks = 0  # chunk-size lines parsed
        self.framing = 0  # body bytes that were not data (chunk framing, trailers)
        self.fields = 0  # header and trailer fields parsed
        self.too_large = False
        self.keep_alive = False
        self.expect_continue = False
        self.method = b"GET"
        self.version = "1.1"
        self.host: bytes | None = None  # the absolute-form target's authority, if any
        self.started = 0.0  # when the body began to arrive


class Connection:
    """One client: its parser, the requests it completed, the bytes not yet sent."""

    def __init__(self, budget: Budget, sock: socket.socket, addr: Any, server: Any) -> None:
        self.budget, self.sock, self.addr, self.server = budget, sock, addr, server
        self.parser = httptools.HttpRequestParser(self)
        # RFC 9110 §6.2: a higher minor version (HTTP/1.2) is served as the highest we know.
        self.parser.set_dangerous_leniencies(lenient_version=True)
        self.current: Request | None = None
        self.in_head = False
        self.head_size = 0  # bytes of the current head's complete lines
        self.line_size = 0  # bytes of its line still arriving (llhttp holds it unseen)
        self.first_read = False  # the read being counted began the current message
        self.ready: deque[Request] = deque()
        self.outbox: deque[Any] = deque()  # bytes and FileBody, sent in order without copying
        self.unsent = 0
        self.deadline = 0.0
        self.closing = False  # close once what is owed is sent
        self.error: Refusal | None = None  # sent after the requests before it are answered
        self.last_closes = False  # a request without keep-alive ended; what follows is ignored
        self.lingering = False
        self.owed = False  # answers were queued since the connection was last idle
        self.scheduled = False
        self.deferred = 0.0  # when its complete requests were left for a later turn
        self.served = 0  # requests answered on this connection
        self.events = 0

    def request(self) -> Request:
        """The request being parsed (httptools calls back only inside one)."""
        assert self.current is not None
        return self.current

    def held(self) -> int:
        """Body bytes of the request still arriving, charged to the budget."""
        current = self.current
        return current.size if current is not None and not current.too_large else 0

    def drop_current(self) -> None:
        """Forget the request still arriving and give its body back to the budget."""
        self.budget.buffered -= self.held()
        self.current = None
        self.in_head = False

    def feed(self, data: bytes) -> None:
        """Parse one read; while a head or a chunked body is open, slice by slice, so that the
        limits on head lines and on chunk framing are counted however the bytes arrive."""
        start, end = 0, len(data)
        while start < end:
            current = self.current
            framed = (
                current is not None
                and current.chunked
                and not self.in_head
                and not current.too_large
            )
            # A body of known length goes to the parser whole: no limit counts its bytes.
            whole = current is not None and not self.in_head and not framed
            step = end - start if whole else FEED_SLICE
            piece = data if step >= end else data[start : start + step]
            before = current.size if current is not None else 0
            self.parser.feed_data(piece)
            if self.in_head:
                self.count_head(piece)
            elif framed and self.current is current and current is not None:
                # The whole piece belongs to this body: what on_body did not get is framing.
                current.framing += len(piece) - (current.size - before)
                if current.framing > MAX_FRAMING + FRAMING_PER_CHUNK * current.chunks:
                    raise Refusal(
                        BAD_REQUEST, "bad_request", "chunk extensions or trailers too long"
                    )
            start += step

    def count_head(self, data: bytes) -> None:
        """Account for a read that left a head incomplete: its last line is still in llhttp."""
        # Only a read that began the message can be a whole HTTP/0.9 request: a later read may
        # be one header line ("Host: x") or the end of a request line, which look the same.
        if self.first_read and HTTP_0_9.fullmatch(data):
            raise Refusal(NO_HEAD, "bad_request", "HTTP/0.9 is not supported")
        self.first_read = False
        newline = data.rfind(b"\n")
        self.line_size = len(data) - newline - 1 if newline >= 0 else self.line_size + len(data)
        if self.line_size > MAX_FIELD or self.head_size + self.line_size > MAX_HEAD:
            if not self.request().headers and b"\n" not in data:
                raise Refusal(b"414 URI Too Long", "uri_too_long", "request line too long")
            raise Refusal(HEAD_TOO_LARGE, "headers_too_large", "request head too large")

    # httptools callbacks, in the order a request triggers them

    def on_message_begin(self) -> None:
        self.current = Request()
        self.in_head = self.first_read = True
        self.head_size = self.line_size = 0
        self.deadline = time.monotonic() + HEAD_TIMEOUT

    def on_url(self, url: bytes) -> None:
        request = self.request()
        request.url += url
        if len(request.url) > MAX_REQUEST_LINE:
            raise Refusal(b"414 URI Too Long", "uri_too_long", "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.request()
        size = len(name) + len(value) + 4
        self.head_size += size
        request.fields += 1
        # Trailers count against the head's limits (h11 and nginx bound them like header lines).
        if size > MAX_FIELD or self.head_size > MAX_HEAD or request.fields > MAX_HEADERS:
            raise Refusal(HEAD_TOO_LARGE, "headers_too_large", "request head too large")
        if self.in_head:
            request.headers.append((name, value))
        # else a trailer: dropped, never merged into the headers the app sees, where it could
        # pose as a header the client did not send first (RFC 9110 §6.5.1).

    def on_headers_complete(self) -> None:
        request = self.request()
        self.in_head = False
        request.method = self.parser.get_method()
        version = self.parser.get_http_version()
        if version == "0.9":
            raise Refusal(NO_HEAD, "bad_request", "HTTP/0.9 is not supported")
        if not version.startswith("1."):
            raise Refusal(
                b"505 HTTP Version Not Supported", "version_not_supported", "HTTP/1.x only"
            )
        request.version = "1.0" if version == "1.0" else "1.1"
        request.keep_alive = self.parser.should_keep_alive()
        length, expect, hosts, chunked = None, False, [], False
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = int(value) if value.strip().isdigit() else None
            elif lowered == b"expect":
                if value.strip().lower() != b"100-continue":
                    # RFC 9110 §10.1.1: an expectation the server cannot meet is answered 417.
                    raise Refusal(
                        b"417 Expectation Failed", "expectation_failed", "only 100-continue is"
                    )
                expect = True
            elif lowered == b"host":
                hosts.append(value.strip())
            elif lowered == b"transfer-encoding":
                codings = [c.strip().lower() for c in value.split(b",")]
                if any(coding != b"chunked" for coding in codings):
                    # RFC 9112 §6.1: a transfer coding the server does not understand is 501.
                    raise Refusal(
                        b"501 Not Implemented", "not_implemented", "unsupported transfer coding"
                    )
                if chunked or len(codings) > 1:
                    # RFC 9112 §7: chunked is applied once; twice is framing to refuse.
                    raise Refusal(BAD_REQUEST, "bad_request", "chunked more than once")
                chunked = True
        self.check_target(request, hosts)
        request.chunked = chunked
        if chunked and request.version == "1.0":
            # RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding has faulty framing; close after it.
            request.keep_alive = False
        request.started = time.monotonic()
        self.deadline = request.started + BODY_GRACE
        if length is not None and length > self.budget.max_body:
            # The app answers 413 from Content-Length alone; the body is never buffered.
            request.too_large, request.size, request.keep_alive = True, length, False
            self.ready.append(request)
            self.last_closes = True
        elif expect and request.version == "1.1":
            # RFC 9110 §10.1.1: 100 only to HTTP/1.1, and only once that request is current
            # (the worker sends it after the answers owed before it).
            request.expect_continue = True

    def check_target(self, request: Request, hosts: list[bytes]) -> None:
        """RFC 9112 §3.2: exactly one valid Host on HTTP/1.1; an absolute-form target wins."""
        if len(hosts) > 1 or (request.version == "1.1" and not hosts):
            raise Refusal(BAD_REQUEST, "bad_request", "exactly one Host header is required")
        if hosts and not HOST.fullmatch(hosts[0]):
            raise Refusal(BAD_REQUEST, "bad_request", "invalid Host header")
        if request.method == b"CONNECT":  # authority-form: no tunnels here (RFC 9110 §9.3.6)
            raise Refusal(b"501 Not Implemented", "not_implemented", "CONNECT is not supported")
        if b"#" in request.url:  # RFC 9112 §3.2: no request-target form has a fragment
            raise Refusal(BAD_REQUEST, "bad_request", "a fragment (#) in the request target")
        if request.url == b"*":  # RFC 9112 §3.2.4: asterisk-form is for OPTIONS alone
            if request.method != b"OPTIONS":
                raise Refusal(BAD_REQUEST, "bad_request", "* is a target for OPTIONS only")
        elif request.url[:1] != b"/":
            try:
                url = httptools.parse_url(request.url)
            except httptools.HttpParserInvalidURLError:
                raise Refusal(BAD_REQUEST, "bad_request", "invalid request target") from None
            # RFC 9112 §3.2.2: absolute-form names an http(s) URI; RFC 9110 §4.2.4: userinfo
            # in one is an error.
            if url.schema.lower() not in (b"http", b"https") or not url.host or url.userinfo:
                raise Refusal(BAD_REQUEST, "bad_request", "invalid request target")
            request.host = url.host + (b":%d" % url.port if url.port else b"")
            request.url = (url.path or b"/") + (b"?" + url.query if url.query else b"")

    def on_chunk_header(self) -> None:
        self.request().chunks += 1

    def on_body(self, body: bytes) -> None:
        request = self.request()
        if request.too_large:
            return
        request.size += len(body)
        self.budget.buffered += len(body)
        if request.size > self.budget.max_body:  # chunked: the length shows only as it arrives
            self.budget.buffered -= request.size
            request.too_large, request.keep_alive = True, False
            self.ready.append(request)
            self.last_closes = True
        else:
            request.body.append(body)
        self.deadline = min(
            request.started + BODY_TIMEOUT,
            request.started + BODY_GRACE + request.size / MIN_BODY_RATE,
        )

    def on_message_complete(self) -> None:
        request = self.request()
        self.current = None
        self.deadline = FOREVER  # owed an answer: the worker's clock, not the client's
        if request.too_large:
            return
        self.last_closes = not request.keep_alive
        self.ready.append(request)


class FileBody:
    """wsgi.file_wrapper (PEP 3333): a file the worker sends with sendfile, never read whole."""

    def __init__(self, file: IO[bytes], block_size: int = 64 * 1024) -> None:
        self.file, self.block_size = file, block_size
        self.offset = file.tell()
        self.remaining = os.fstat(file.fileno()).st_size - self.offset

    def __iter__(self) -> Any:
        return iter(lambda: self.file.read(self.block_size), b"")

    def close(self) -> None:
        self.file.close()


def wsgi_environ(conn: Connection, request: Request) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of a complete request; its body as wsgi.input."""
    raw = request.url.decode("latin-1")
    path, _, query = raw.partition("?")
    server = conn.server if isinstance(conn.server, tuple) else (str(conn.server), "0")
    client = conn.addr if isinstance(conn.addr, tuple) else ("", 0)
    body = b"".join(request.body) if not request.too_large else b""
    environ = {
        "REQUEST_METHOD": request.method.decode("latin-1"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1") if "%" in path else path,
        "QUERY_STRING": query,
        "RAW_URI": raw,
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/" + request.version,
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(request.size),  # chunked bodies arrive de-chunked
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.file_wrapper": FileBody,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        if UNDERSCORE in name:
            continue
        key = name.decode("latin-1").upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value.decode("latin-1")
            continue
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue
        key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = environ[key] + "," + text if key in environ else text
    if request.host is not None:  # RFC 9112 §3.2.2: the target's authority replaces Host
        environ["HTTP_HOST"] = request.host.decode("latin-1")
    return environ


def frame(
    request: Request,
    status: str,
    headers: Iterable[tuple[str, str]],
    length: int,
    keep: bool,
    date: bytes,
) -> tuple[bytes, bool]:
    """Status line and headers (Date, Content-Length, Connection added); True if a body follows."""
    status_bytes = status.encode("latin-1")
    head = request.method == b"HEAD"  # keeps the app's Content-Length, sends no body
    dropped = ("connection", "transfer-encoding") if head else FRAMING_HEADERS
    lines = [b"HTTP/1.1 ", status_bytes, b"\r\nDate: ", date]
    for name, value in headers:
        if name.lower() in dropped:
            continue
        lines += (b"\r\n", name.encode("latin-1"), b": ", value.encode("latin-1"))
    with_body = not (status_bytes[:3] in NO_BODY_STATUSES or status_bytes[:1] == b"1" or head)
    if with_body:
        lines += (b"\r\nContent-Length: ", str(length).encode())
    lines.append(KEEP_ALIVE if keep else CLOSE)
    return b"".join(lines), with_body


def error_answer(refusal: Refusal) -> bytes:
    """The worker's own answer in the app's error shape (HTTP/0.9 gets the bare body)."""
    body = orjson.dumps({"error": {"code": refusal.code, "message": refusal.message}}) + b"\n"
    if not refusal.status:
        return body
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (refusal.status, len(body), body)
    )
