"""HTTP/1.1 for BufferedWorker: requests parsed incrementally, their WSGI environ, framed answers.

httptools (llhttp, the C parser of Node.js and uvicorn) calls back into Connection as bytes
arrive; a request is handed on only once complete. The event loop that feeds the parser and
sends the answers is service/gunicorn_worker.py.
"""

import io
import socket
import sys
import time
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

import httptools

# A request must arrive whole within this long of its first byte; a body that keeps moving gets
# this long between reads.
READ_TIMEOUT = 10.0
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
KEEP_ALIVE, CLOSE = b"\r\nConnection: keep-alive\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
NO_BODY_STATUSES = (b"204", b"304")
FRAMING_HEADERS = ("content-length", "connection", "transfer-encoding")  # frame sets these
# Header names with "_" are dropped: after WSGI's "-" → "_" they could pose as another header.
UNDERSCORE = ord("_")


class Budget(Protocol):
    """What bodies are charged to (the worker): the per-request limit, the bytes buffered."""

    max_body: int
    buffered: int


class Request:
    """One request as the parser delivers it."""

    __slots__ = ("body", "headers", "keep_alive", "method", "size", "too_large", "url", "version")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.too_large = False
        self.keep_alive = False
        self.method = b"GET"
        self.version = "1.1"


class Connection:
    """One client: its parser, the requests it completed, the bytes not yet sent."""

    def __init__(self, budget: Budget, sock: socket.socket, addr: Any, server: Any) -> None:
        self.budget, self.sock, self.addr, self.server = budget, sock, addr, server
        self.parser = httptools.HttpRequestParser(self)
        self.current: Request | None = None
        self.head_size = 0  # bytes received since the current request began, until its head ends
        self.ready: list[Request] = []
        self.outbox = b""
        self.deadline = 0.0
        self.closing = False
        self.events = 0

    def request(self) -> Request:
        """The request being parsed (httptools calls back only inside one)."""
        assert self.current is not None
        return self.current

    # httptools callbacks, in the order a request triggers them

    def on_message_begin(self) -> None:
        self.current = Request()
        self.head_size = 0
        self.deadline = time.monotonic() + READ_TIMEOUT

    def on_url(self, url: bytes) -> None:
        self.request().url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request().headers.append((name, value))

    def on_headers_complete(self) -> None:
        request = self.request()
        self.head_size = -1  # the head is complete: no more head accounting
        request.method = self.parser.get_method()
        request.version = self.parser.get_http_version()
        length, expect = None, False
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = int(value) if value.strip().isdigit() else None
            elif lowered == b"expect":
                expect = value.strip().lower() == b"100-continue"
        if length is not None and length > self.budget.max_body:
            # The app answers 413 from Content-Length alone; the body is never buffered.
            request.too_large, request.size = True, length
            self.ready.append(request)
            self.closing = True
        elif expect:
            self.outbox += CONTINUE  # the client waits for this before it sends the body

    def on_body(self, body: bytes) -> None:
        request = self.request()
        if request.too_large:
            return
        request.size += len(body)
        self.budget.buffered += len(body)
        if request.size > self.budget.max_body:  # chunked: the length shows only as it arrives
            self.budget.buffered -= request.size
            request.too_large = True
            self.ready.append(request)
            self.closing = True
        else:
            request.body.append(body)
        self.deadline = time.monotonic() + READ_TIMEOUT

    def on_message_complete(self) -> None:
        request = self.request()
        self.current = None
        if request.too_large:
            return
        request.keep_alive = self.parser.should_keep_alive()
        self.ready.append(request)


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
    return environ


def frame(
    request: Request,
    status: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    keep: bool,
    date: bytes,
) -> bytes:
    """Status line, headers (Date, Content-Length, Connection added) and body."""
    status_bytes = status.encode("latin-1")
    head = request.method == b"HEAD"  # keeps the app's Content-Length, sends no body
    dropped = ("connection", "transfer-encoding") if head else FRAMING_HEADERS
    lines = [b"HTTP/1.1 ", status_bytes, b"\r\nDate: ", date]
    for name, value in headers:
        if name.lower() in dropped:
            continue
        lines += (b"\r\n", name.encode("latin-1"), b": ", value.encode("latin-1"))
    no_body = status_bytes[:3] in NO_BODY_STATUSES or status_bytes[:1] == b"1"
    if not no_body and not head:
        lines += (b"\r\nContent-Length: ", str(len(body)).encode())
    lines.append(KEEP_ALIVE if keep else CLOSE)
    if not no_body and not head:
        lines.append(body)
    return b"".join(lines)
