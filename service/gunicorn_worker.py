"""A gunicorn worker that buffers whole requests in one event loop, then runs the app inline.

Why (bench/README.md): gthread hands every request from its poller thread to a pool thread and
back, each hand-off a GIL hand-over, and its pure-Python parser and environ builder cost more
than the app's own work; a pool thread also blocks on a client that is slow to send, so 16 slow
or 500 silent connections stopped the service. Here one thread does everything, as nginx in
front of the sync worker would, but in process: it reads every connection without blocking,
parses HTTP/1.1 incrementally with httptools (llhttp, the C parser of Node.js and uvicorn), runs
the WSGI app only once a request is complete, and sends without blocking. A slow or silent
client holds a buffer and a file descriptor, never the worker. gunicorn stays the process
manager: master, worker life cycle, signals, heartbeat, configuration and hooks.
"""

import errno
import io
import os
import selectors
import socket
import sys
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools
import orjson
from gunicorn.workers import base

from service.settings import Settings

# A request must arrive whole within this long of its first byte; a body that keeps moving gets
# this long between reads. A connection idle between requests closes after gunicorn's keepalive.
READ_TIMEOUT = 10.0
MAX_HEAD = 64 * 1024  # request line and headers; more is answered 431
RECV_SIZE = 256 * 1024
# All connections together may buffer this many full-size uploads; past it a connection gets 503.
MAX_BUFFERED_UPLOADS = 8
TICK = 0.5  # heartbeat and time-out sweep interval
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
KEEP_ALIVE, CLOSE = b"\r\nConnection: keep-alive\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
NO_BODY_STATUSES = (b"204", b"304")
FRAMING_HEADERS = ("content-length", "connection", "transfer-encoding")  # the worker sets these
# Header names with "_" are dropped: after WSGI's "-" → "_" they could pose as another header.
UNDERSCORE = ord("_")


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

    def __init__(
        self, worker: "BufferedWorker", sock: socket.socket, addr: Any, server: Any
    ) -> None:
        self.worker, self.sock, self.addr, self.server = worker, sock, addr, server
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
        if length is not None and length > self.worker.max_body:
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
        self.worker.buffered += len(body)
        if request.size > self.worker.max_body:  # chunked: the length shows only as it arrives
            self.worker.buffered -= request.size
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


class BufferedWorker(base.Worker):
    """One event loop per worker: buffer complete requests, run the app inline, send async."""

    def init_process(self) -> None:
        """Set up the selector and the body limit before gunicorn loads the app and runs."""
        self.poller = selectors.DefaultSelector()
        self.connections: set[Connection] = set()
        self.max_body = Settings.from_env().max_upload_bytes
        self.buffered_limit = MAX_BUFFERED_UPLOADS * self.max_body
        self.buffered = 0
        self.date = b""
        self.date_second = 0
        super().init_process()

    def run(self) -> None:
        """Serve until told to stop, then finish sending what is owed and close."""
        self.accepting = False
        self.set_accepting(True)
        next_tick = 0.0
        while self.alive:
            for key, mask in self.poller.select(TICK):
                if isinstance(key.data, Connection):
                    self.on_event(key.data, mask)
                elif self.alive:
                    self.accept(key.data)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + TICK
                self.notify()
                self.sweep(now)
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
        self.stop()

    def set_accepting(self, accepting: bool) -> None:
        """Watch the listening sockets, or stop (a full worker would see them ready forever)."""
        if accepting == self.accepting:
            return
        for listener in self.sockets:
            if accepting:
                listener.setblocking(False)
                self.poller.register(listener, selectors.EVENT_READ, listener)
            else:
                self.poller.unregister(listener)
        self.accepting = accepting

    def stop(self) -> None:
        """Stop accepting; send owed responses until the graceful timeout; close everything."""
        self.set_accepting(False)
        for conn in list(self.connections):
            conn.closing = True
            if not conn.outbox:
                self.close(conn)
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while self.connections and time.monotonic() < deadline:
            for key, _ in self.poller.select(TICK):
                self.flush(key.data)
            self.notify()
        for conn in list(self.connections):
            self.close(conn)

    # -- connections -------------------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        """Take one waiting connection (up to worker_connections open at once).

        One per wake-up, not all that wait: every worker is woken by a new connection, and a
        worker that took a whole burst (a client's pool of keep-alive connections) would serve
        it alone while the others idle.
        """
        if len(self.connections) >= self.cfg.worker_connections:
            self.set_accepting(False)  # until a connection closes
            return
        try:
            sock, addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self, sock, addr, listener.getsockname())
        conn.deadline = time.monotonic() + self.cfg.keepalive
        self.connections.add(conn)
        self.watch(conn, selectors.EVENT_READ)

    def watch(self, conn: Connection, events: int) -> None:
        """Wait for a request (read) or for room to send the rest of a response (write)."""
        if events == conn.events:
            return
        if conn.events:
            self.poller.modify(conn.sock, events, conn)
        else:
            self.poller.register(conn.sock, events, conn)
        conn.events = events

    def close(self, conn: Connection) -> None:
        """Forget a connection and what it buffered."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        for request in conn.ready + ([conn.current] if conn.current else []):
            if not request.too_large:
                self.buffered -= request.size
        conn.ready.clear()
        conn.current = None
        if conn.events:
            self.poller.unregister(conn.sock)
        conn.sock.close()
        if self.alive and not self.accepting:
            self.set_accepting(True)

    def sweep(self, now: float) -> None:
        """Close connections idle past keep-alive, or too slow to send a request or take one."""
        for conn in [c for c in self.connections if c.deadline <= now]:
            self.close(conn)

    def on_event(self, conn: Connection, mask: int) -> None:
        """Send what is owed, or read what arrived and serve every complete request."""
        if mask & selectors.EVENT_WRITE:
            self.flush(conn)
        elif mask & selectors.EVENT_READ:
            self.receive(conn)

    def receive(self, conn: Connection) -> None:
        """Feed the parser what arrived; answer malformed, oversized or unaffordable requests."""
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn)
            return
        if self.buffered + len(data) > self.buffered_limit:
            self.refuse(conn, b"503 Service Unavailable", "busy", "too many uploads in progress")
            return
        try:
            conn.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            conn.closing = True  # served as plain HTTP/1.1, then closed: no protocol switch here
        except httptools.HttpParserError as error:
            self.refuse(conn, b"400 Bad Request", "bad_request", f"malformed HTTP: {error}")
            return
        if conn.head_size >= 0 and conn.current is not None:
            conn.head_size += len(data)
            if conn.head_size > MAX_HEAD:
                status = b"431 Request Header Fields Too Large"
                self.refuse(conn, status, "headers_too_large", "request head too large")
                return
        while conn.ready:
            request = conn.ready.pop(0)
            if not request.too_large:
                self.buffered -= request.size
            keep = self.respond(conn, request)
            if not keep:
                conn.closing = True
                conn.ready.clear()
        if conn.current is None and not conn.closing:
            conn.deadline = time.monotonic() + self.cfg.keepalive
        self.flush(conn)

    def refuse(self, conn: Connection, status: bytes, code: str, message: str) -> None:
        """Answer without the app, in the app's error shape, and close once sent."""
        body = orjson.dumps({"error": {"code": code, "message": message}}) + b"\n"
        conn.outbox += (
            b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, len(body), body)
        )
        conn.closing = True
        self.flush(conn)

    def flush(self, conn: Connection) -> None:
        """Send as much as the socket takes; then wait for room, the next request, or close."""
        if conn.outbox:
            try:
                sent = conn.sock.send(conn.outbox)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close(conn)
                return
            conn.outbox = conn.outbox[sent:]
            if conn.outbox:
                conn.deadline = time.monotonic() + READ_TIMEOUT
                self.watch(conn, selectors.EVENT_WRITE)  # no new request until this one is out
                return
        if conn.closing:
            self.close(conn)
        else:
            self.watch(conn, selectors.EVENT_READ)

    # -- WSGI --------------------------------------------------------------------------------

    def respond(self, conn: Connection, request: Request) -> bool:
        """Run the app on one complete request and queue its response; True to keep alive."""
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        environ = self.environ(conn, request)
        state: list[Any] = []

        def start_response(
            status: str, headers: Iterable[tuple[str, str]], exc_info: Any = None
        ) -> None:
            if exc_info and state:
                raise exc_info[1].with_traceback(exc_info[2])
            state[:] = [status, headers]

        try:
            result = self.wsgi(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status, headers = state
        except Exception:  # a WSGI failure must still get an answer, never a hang
            self.log.exception("Error handling request %s", request.url[:200])
            self.refuse(conn, b"500 Internal Server Error", "internal_error", "internal error")
            return False
        keep = request.keep_alive and self.alive and not conn.closing and bool(self.cfg.keepalive)
        conn.outbox += self.frame(request, status, headers, body, keep)
        return keep

    def environ(self, conn: Connection, request: Request) -> dict[str, Any]:
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
        self,
        request: Request,
        status: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        keep: bool,
    ) -> bytes:
        """Status line, headers (Date, Content-Length, Connection added) and body."""
        status_bytes = status.encode("latin-1")
        head = request.method == b"HEAD"  # keeps the app's Content-Length, sends no body
        dropped = ("connection", "transfer-encoding") if head else FRAMING_HEADERS
        lines = [b"HTTP/1.1 ", status_bytes, b"\r\nDate: ", self.http_date()]
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

    def http_date(self) -> bytes:
        """The Date header's value, formatted once a second."""
        now = int(time.time())
        if now != self.date_second:
            self.date_second, self.date = now, formatdate(now, usegmt=True).encode()
        return self.date
