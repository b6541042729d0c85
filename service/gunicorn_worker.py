"""A gunicorn worker that buffers whole requests in one event loop, then runs the app inline.

Why (bench/README.md): gthread hands every request from its poller thread to a pool thread and
back, each hand-off a GIL hand-over, and its pure-Python parser and environ builder cost more
than the app's own work; a pool thread also blocks on a client that is slow to send, so 16 slow
or 500 silent connections stopped the service. Here one thread does everything, as nginx in
front of the sync worker would, but in process: it reads every connection without blocking,
parses HTTP/1.1 incrementally (service/http1.py: httptools, the C parser of Node.js and
uvicorn), runs the WSGI app only once a request is complete, and sends without blocking. A slow
or silent client holds a buffer and a file descriptor, never the worker. gunicorn stays the
process manager: master, worker life cycle, signals, heartbeat, configuration and hooks.
"""

import errno
import os
import selectors
import socket
import time
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any

import httptools
import orjson
from gunicorn.workers import base

from service import settings
from service.http1 import READ_TIMEOUT, Connection, Request, frame, wsgi_environ

# An idle connection closes after gunicorn's keepalive; one sending a request, after READ_TIMEOUT.
MAX_HEAD = 64 * 1024  # request line and headers; more is answered 431
RECV_SIZE = 256 * 1024
# All connections together may buffer this many full-size uploads; past it a connection gets 503.
MAX_BUFFERED_UPLOADS = 8
TICK = 0.5  # heartbeat and time-out sweep interval


class BufferedWorker(base.Worker):
    """One event loop per worker: buffer complete requests, run the app inline, send async."""

    def init_process(self) -> None:
        """Set up the selector and the body limit before gunicorn loads the app and runs."""
        self.poller = selectors.DefaultSelector()
        self.connections: set[Connection] = set()
        self.max_body = settings.current().max_upload_bytes
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
        environ = wsgi_environ(conn, request)
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
        conn.outbox += frame(request, status, headers, body, keep, self.http_date())
        return keep

    def http_date(self) -> bytes:
        """The Date header's value, formatted once a second."""
        now = int(time.time())
        if now != self.date_second:
            self.date_second, self.date = now, formatdate(now, usegmt=True).encode()
        return self.date
