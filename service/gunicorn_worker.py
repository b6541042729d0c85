"""A gunicorn worker that buffers whole requests in one event loop, then runs the app inline.

Why (bench/README.md): gthread's thread hand-offs and pure-Python parser cost more than the app,
and its pool threads block on slow clients. One thread here reads, parses (service/http1.py),
runs the app on complete requests and sends, all without blocking; each defence sits by its limit.
"""

import ctypes
import ctypes.util
import errno
import gc
import mmap
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any

import httptools
from gunicorn.workers import base

from service import settings
from service.http1 import (
    CONTINUE,
    FOREVER,
    Connection,
    FileBody,
    Refusal,
    Request,
    error_answer,
    frame,
    refusal_of,
    wsgi_environ,
)
from service.idle import LOOP

# Reads of at most this much: a read's requests are parsed at once, so it bounds what one read
# can queue (asyncio, under uvicorn, reads 256 KiB; a 64 KiB read costs an upload nothing).
RECV_SIZE = 64 * 1024
# All connections together may buffer this many full-size uploads; past it the connection
# holding the largest unfinished body gets 503, so slow uploads cannot starve small requests.
MAX_BUFFERED_UPLOADS = 8
# Per loop turn, a connection runs at most this many of its pipelined requests before the
# others get their turn (uvicorn queues them and runs one at a time, between other connections).
PIPELINE_PER_TURN = 8
# A connection whose unsent answers pass this is neither read nor served until the client takes
# them (uvicorn pauses reading past its transport's high-water mark).
OUTBOX_HIGH = 1024 * 1024
# Every worker's count of open connections (plus one; 0: a free slot), by worker age, in memory
# shared by all: gunicorn's master imports this module before it forks the workers. A worker
# holding more than another leaves a new connection to it for BALANCE_PAUSE: kept-alive
# connections otherwise stay where a race put them (8 clients split 5/3, 6/2, even 8/0), and
# the busier worker's queue sets the tail (bench/README.md, tail latency).
SLOTS = 64
SHARED = mmap.mmap(-1, SLOTS * 8)
COUNTS = memoryview(SHARED).cast("q")
BALANCE_PAUSE = 0.002
# ... again and again up to this long: a busy host may not run the other worker within one pause
# (at load 10 on two cores, 40 connections in a row all went to one worker with a single pause).
BALANCE_MAX = 0.02
SEND_TIMEOUT = 10.0  # between two sends that make progress (nginx's send_timeout)
# After an answer that closes, writing is shut down and what the client still sends is read and
# dropped this long, so that it reads the answer instead of a reset (nginx's lingering close).
LINGER_TIME = 2.0
# Out of file descriptors in accept: stop accepting this long (nginx waits 500 ms), never crash.
ACCEPT_PAUSE = 0.5
FD_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
TICK = 0.5  # heartbeat and time-out sweep interval; also the heartbeat between requests
# The heartbeat thread beats this long past a request's budget: the step running when the
# budget ran out (one image's decode, one model run of RUN_SLICE images) must still end.
HEARTBEAT_GRACE = 5.0
BEATS_PER_TIMEOUT = 5  # the heartbeat thread's pace, against gunicorn's timeout
BUSY = Refusal(b"503 Service Unavailable", "busy", "too many uploads in progress")
TIMED_OUT = Refusal(b"408 Request Timeout", "request_timeout", "request not received in time")
FAILED = Refusal(b"500 Internal Server Error", "internal_error", "internal error")
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
SERVER_OPTIONS = [("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS")]


class Heartbeat:
    """Tells gunicorn the worker lives while the serving thread is inside one long request.

    The loop beats only between requests, and gunicorn kills a worker silent for `timeout`
    seconds, with every client on it. A request's work is bounded by its own budget instead
    (service/deadline.py: checked between images and model runs, a clean 503 past it); this
    thread beats for it meanwhile (onnxruntime and Pillow release the GIL, and pure Python
    yields it every few ms). Past the budget and a grace it stops beating: a request that never
    reaches a check is hung, and gunicorn kills the worker `timeout` seconds later.
    """

    def __init__(self, notify: Callable[[], None], limit: float, interval: float) -> None:
        # Each wake takes the GIL from the serving thread (up to its 5 ms switch interval):
        # waking a few times per worker timeout, not every TICK, keeps that off the tail.
        self.notify, self.limit, self.interval = notify, limit, interval
        self.started = 0.0  # when the running request began; 0: none runs
        self.stopped = threading.Event()
        if limit > 0:
            threading.Thread(target=self.beat, name="heartbeat", daemon=True).start()

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.started = 0.0

    def beat(self) -> None:
        while not self.stopped.wait(self.interval):
            started = self.started
            if started and time.monotonic() - started < self.limit:
                self.notify()


def return_freed_memory() -> None:
    """Fix glibc's thresholds, so that large freed buffers go back to the system.

    By default a freed mmap'd block raises the mmap threshold to its size, and later blocks that
    size come from the heap, which is never returned: after clients left with 150 large answers
    unread, a worker stayed 240 MB above idle. Setting the thresholds turns that off.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024)
    libc.mallopt(M_TRIM_THRESHOLD, 1024 * 1024)


class BufferedWorker(base.Worker):
    """One event loop per worker: buffer complete requests, run the app inline, send async."""

    def init_process(self) -> None:
        """Set up the selector and the body limit before gunicorn loads the app and runs."""
        self.poller = selectors.DefaultSelector()
        self.connections: set[Connection] = set()
        self.runnable: deque[Connection] = deque()  # complete requests waiting for their turn
        self.max_body = settings.current().max_upload_bytes
        self.buffered_limit = MAX_BUFFERED_UPLOADS * self.max_body
        self.buffered = 0
        self.accepting = False
        self.accept_paused_until = 0.0
        self.fd_exhausted = False
        self.notified = 0.0
        self.slot = self.age % SLOTS
        self.balance_since = 0.0  # when this worker began leaving a connection to another
        self.date = b""
        self.date_second = 0
        return_freed_memory()
        super().init_process()

    def run(self) -> None:
        """Serve until told to stop, then finish the requests in flight and close."""
        # The app is loaded: its objects live as long as the worker. Frozen, the collector stops
        # scanning them (a full collection took 13 ms with them, ~0 frozen).
        gc.freeze()
        budget = settings.current().request_timeout
        self.heartbeat_thread = Heartbeat(
            self.notify,
            budget + HEARTBEAT_GRACE if budget else 0,
            max(TICK, self.cfg.timeout / BEATS_PER_TIMEOUT),
        )
        COUNTS[self.slot] = 1
        LOOP.drive()
        self.set_accepting(True)
        try:
            self.loop()
        finally:
            COUNTS[self.slot] = 0
            self.heartbeat_thread.stopped.set()
        for conn in list(self.connections):
            self.close(conn)

    def loop(self) -> None:
        """The event loop: read, run what is complete, send; every TICK the housekeeping."""
        next_tick = 0.0
        stop_by = 0.0
        while True:
            timeout = 0.0 if self.runnable else TICK
            paused = self.accept_paused_until - time.monotonic()
            if not self.accepting and 0 < paused < timeout:
                timeout = paused
            events = self.poller.select(0)
            # Nothing ready: background work (a shadow) a step at a time, until events arrive.
            while not events and timeout and LOOP.step():
                events = self.poller.select(0)
            if not events and timeout:
                events = self.poller.select(timeout)
            for key, mask in events:
                if isinstance(key.data, Connection):
                    self.on_event(key.data, mask)
                elif self.accepting:
                    self.accept(key.data)
            for _ in range(len(self.runnable)):
                conn = self.runnable.popleft()
                conn.scheduled = False
                if conn in self.connections:
                    self.serve(conn)
            now = time.monotonic()
            if not self.accepting and now >= self.accept_paused_until:
                self.resume_accepting(now)
            if not self.alive:
                if not stop_by:
                    stop_by = now + max(self.cfg.graceful_timeout - 1.0, 0.0)
                    self.begin_stopping()
                if not self.connections or now >= stop_by:
                    break
            if now >= next_tick:
                next_tick = now + TICK
                self.heartbeat(now)
                self.sweep(now)
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break

    def heartbeat(self, now: float) -> None:
        """Tell the arbiter this worker is alive (also between requests of one long turn)."""
        if now - self.notified >= TICK:
            self.notified = now
            self.notify()

    def begin_stopping(self) -> None:
        """Stop accepting and close idle connections; requests in flight, uploads included,
        are still read and answered (Connection: close) until graceful_timeout."""
        self.set_accepting(False)
        for conn in list(self.connections):
            if conn.current is None and not conn.ready and not conn.outbox:
                self.close(conn)

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

    def resume_accepting(self, now: float) -> None:
        """Accept again once a pause for file descriptors is over and there is room."""
        if (
            self.alive
            and not self.accepting
            and now >= self.accept_paused_until
            and len(self.connections) < self.cfg.worker_connections
        ):
            self.set_accepting(True)

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
        if not self.balanced():
            now = time.monotonic()
            self.balance_since = self.balance_since or now
            if now - self.balance_since < BALANCE_MAX:
                self.pause_accepting(BALANCE_PAUSE)
                return
        self.balance_since = 0.0
        try:
            sock, addr = listener.accept()
        except OSError as error:
            if error.errno in FD_EXHAUSTED:
                if not self.fd_exhausted:
                    self.log.warning("accept: %s; pausing accepts", os.strerror(error.errno))
                    self.fd_exhausted = True
                self.pause_accepting(ACCEPT_PAUSE)
                return
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.fd_exhausted = False
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self, sock, addr, listener.getsockname())
        conn.deadline = time.monotonic() + self.cfg.keepalive
        self.connections.add(conn)
        COUNTS[self.slot] = len(self.connections) + 1
        self.watch(conn, selectors.EVENT_READ)

    def balanced(self) -> bool:
        """False while another live worker holds fewer connections than this one."""
        others = [n for i, n in enumerate(COUNTS) if n and i != self.slot]
        return not others or len(self.connections) < min(others)

    def pause_accepting(self, seconds: float) -> None:
        """Stop watching the listeners for a while (the loop resumes them)."""
        self.accept_paused_until = time.monotonic() + seconds
        self.set_accepting(False)

    def watch(self, conn: Connection, events: int) -> None:
        """Wait for a request (read), for room to send (write), or for nothing (its turn)."""
        if events == conn.events:
            return
        if not events:
            self.poller.unregister(conn.sock)
        elif conn.events:
            self.poller.modify(conn.sock, events, conn)
        else:
            self.poller.register(conn.sock, events, conn)
        conn.events = events

    def close(self, conn: Connection) -> None:
        """Forget a connection and what it buffered."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        COUNTS[self.slot] = len(self.connections) + 1
        for request in conn.ready:
            if not request.too_large:
                self.buffered -= request.size
        conn.ready.clear()
        conn.drop_current()
        for item in conn.outbox:
            if isinstance(item, FileBody):
                item.close()
        conn.outbox.clear()
        if conn.events:
            self.poller.unregister(conn.sock)
            conn.events = 0
        conn.sock.close()
        self.resume_accepting(time.monotonic())

    def sweep(self, now: float) -> None:
        """Close connections idle past keep-alive or too slow to take an answer; answer 408 to
        those too slow to send a request."""
        for conn in [c for c in self.connections if c.deadline <= now]:
            if conn.deferred and not conn.outbox:
                continue  # waiting for its turn, not for the client
            if conn.lingering or conn.outbox or conn.current is None:
                self.close(conn)
            else:
                self.fail(conn, TIMED_OUT)
                conn.deadline = now + SEND_TIMEOUT
                self.serve(conn)

    def on_event(self, conn: Connection, mask: int) -> None:
        """Send what is owed, or read what arrived and serve the complete requests."""
        if mask & selectors.EVENT_WRITE:
            self.flush(conn)
        elif mask & selectors.EVENT_READ:
            self.receive(conn)

    def receive(self, conn: Connection) -> None:
        """Feed the parser what arrived; refuse malformed, oversized or unaffordable requests."""
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn)
            return
        if conn.lingering or conn.error or conn.closing or conn.last_closes:
            return  # after an answer that closes, what follows is read and dropped
        if self.buffered + len(data) > self.buffered_limit and not self.make_room(conn, data):
            self.fail(conn, BUSY)
        else:
            try:
                conn.feed(data)
            except httptools.HttpParserUpgrade:
                # RFC 9110 §7.8: Upgrade may be ignored; served as HTTP/1.1, then closed (llhttp
                # parses nothing after it).
                if conn.ready:
                    conn.ready[-1].keep_alive = False
                conn.last_closes = True
            except Refusal as refusal:
                self.fail(conn, refusal)
            except httptools.HttpParserError as error:
                if not conn.last_closes:  # else: bytes after `Connection: close`, ignored
                    self.fail(conn, refusal_of(error, data))
        self.serve(conn)

    def make_room(self, conn: Connection, data: bytes) -> bool:
        """Refuse the largest unfinished upload (503) while it is larger than this one's."""
        while self.buffered + len(data) > self.buffered_limit:
            hog = max(self.connections, key=Connection.held)
            if hog is conn or hog.held() <= conn.held() + len(data):
                return False
            self.fail(hog, BUSY)
            self.serve(hog)
        return True

    def fail(self, conn: Connection, refusal: Refusal) -> None:
        """Answer a refusal after the requests before it, then close; parse nothing more."""
        conn.error = refusal
        conn.drop_current()

    def serve(self, conn: Connection) -> None:
        """Run up to PIPELINE_PER_TURN complete requests, then send; the rest wait a turn."""
        served = 0
        if conn.deferred:
            # The client's clock (a head or body still arriving) stops while it waits for us.
            conn.deadline += time.monotonic() - conn.deferred
            conn.deferred = 0.0
        while conn.ready and not conn.closing:
            if served == PIPELINE_PER_TURN or conn.unsent > OUTBOX_HIGH:
                conn.deferred = time.monotonic()
                break
            request = conn.ready.popleft()
            if not request.too_large:
                self.buffered -= request.size
            if not self.respond(conn, request):
                conn.closing = True
            served += 1
            self.heartbeat(time.monotonic())
        if conn.closing:
            for request in conn.ready:
                if not request.too_large:
                    self.buffered -= request.size
            conn.ready.clear()
        elif not conn.ready:
            if conn.error is not None:
                self.queue(conn, error_answer(conn.error))
                conn.closing = True
            elif conn.current is not None and conn.current.expect_continue:
                conn.current.expect_continue = False
                self.queue(conn, CONTINUE)  # now that every answer before it is queued
        self.flush(conn)

    def queue(self, conn: Connection, item: Any) -> None:
        """Add bytes or a FileBody to what the connection is owed, without copying."""
        conn.outbox.append(item)
        conn.unsent += item.remaining if isinstance(item, FileBody) else len(item)
        conn.owed = True

    def send(self, conn: Connection) -> int:
        """One send from the head of the outbox: a file by sendfile, else up to 64 buffers."""
        outbox = conn.outbox
        first = outbox[0]
        if isinstance(first, FileBody):
            count = min(first.remaining, OUTBOX_HIGH)
            sent = os.sendfile(conn.sock.fileno(), first.file.fileno(), first.offset, count)
            if not sent:
                raise OSError(errno.EIO, "file shorter than announced")
            first.offset += sent
            first.remaining -= sent
            if not first.remaining:
                outbox.popleft().close()
            return sent
        buffers: list[bytes | memoryview] = []
        for item in outbox:
            if isinstance(item, FileBody) or len(buffers) == 64:
                break
            buffers.append(item)
        sent = conn.sock.sendmsg(buffers)
        left = sent
        while left:
            size = len(outbox[0])
            if left < size:
                outbox[0] = memoryview(outbox[0])[left:]
                break
            outbox.popleft()
            left -= size
        return sent

    def flush(self, conn: Connection) -> None:
        """Send as much as the socket takes; then wait for room, the next request, or close."""
        progress = False
        while conn.outbox:
            try:
                sent = self.send(conn)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close(conn)
                return
            conn.unsent -= sent
            progress = True
        if conn.outbox:
            if progress or conn.deadline == FOREVER:
                conn.deadline = time.monotonic() + SEND_TIMEOUT
            self.watch(conn, selectors.EVENT_WRITE)
            return
        if conn.closing:
            self.linger(conn)
        elif conn.ready:
            self.watch(conn, 0)  # not read until its queued requests are answered
            if not conn.scheduled:
                conn.scheduled = True
                self.runnable.append(conn)
        else:
            if conn.owed and conn.current is None:
                # Only an answer renews keep-alive: bare CRLFs between requests do not.
                conn.deadline = time.monotonic() + self.cfg.keepalive
            conn.owed = False
            self.watch(conn, selectors.EVENT_READ)

    def linger(self, conn: Connection) -> None:
        """Shut writing down and drop what the client still sends until it closes, briefly."""
        if conn.lingering:
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(conn)
            return
        conn.lingering = True
        conn.deadline = time.monotonic() + LINGER_TIME
        self.watch(conn, selectors.EVENT_READ)

    # -- WSGI --------------------------------------------------------------------------------

    def respond(self, conn: Connection, request: Request) -> bool:
        """Run the app on one complete request and queue its response; True to keep alive."""
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        keep = request.keep_alive and self.alive and not conn.closing and bool(self.cfg.keepalive)
        if request.url == b"*":  # OPTIONS *, a ping of the server itself (RFC 9110 §9.3.7)
            self.queue(conn, frame(request, "200 OK", SERVER_OPTIONS, 0, keep, self.http_date())[0])
            return keep
        environ = wsgi_environ(conn, request)
        state: list[Any] = []

        def start_response(
            status: str, headers: Iterable[tuple[str, str]], exc_info: Any = None
        ) -> None:
            if exc_info and state:
                raise exc_info[1].with_traceback(exc_info[2])
            state[:] = [status, headers]

        try:
            with self.heartbeat_thread:
                result = self.wsgi(environ, start_response)
                if isinstance(result, FileBody):  # sent from the file as the client takes it
                    body: Any = result
                    length = result.remaining
                else:
                    try:
                        body = b"".join(result)
                    finally:
                        if hasattr(result, "close"):
                            result.close()
                    length = len(body)
            status, headers = state
        except Exception:  # a WSGI failure must still get an answer, never a hang
            self.log.exception("Error handling request %s", request.url[:200])
            self.queue(conn, error_answer(FAILED))
            return False
        head, with_body = frame(request, status, headers, length, keep, self.http_date())
        self.queue(conn, head)
        if with_body and length:
            self.queue(conn, body)
        elif isinstance(body, FileBody):
            body.close()
        return keep

    def http_date(self) -> bytes:
        """The Date header's value, formatted once a second."""
        now = int(time.time())
        if now != self.date_second:
            self.date_second, self.date = now, formatdate(now, usegmt=True).encode()
        return self.date
