"""Raw HTTP/1.1 over a socket, as a hostile or careful client sees it; the worker's /proc."""

import contextlib
import socket
import subprocess
from pathlib import Path


class Client:
    """A raw connection that reads responses one at a time, keeping what follows."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
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
        chunk = self.sock.recv(1 << 20)
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

    def rest(self) -> bytes:
        """Everything until the server closes (a reset counts as a close)."""
        with contextlib.suppress(ConnectionResetError):
            while chunk := self.sock.recv(1 << 20):
                self.data += chunk
        data, self.data = self.data, b""
        return data

    def closed(self) -> bool:
        """True when the server closed the connection (after what was already read)."""
        return not self.data and self.rest() == b""


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's worker processes."""
    return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def predict_request(image: bytes, extra: str = "") -> bytes:
    """A POST /predict of one PNG, with extra header lines if given."""
    return (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(image)}\r\n{extra}\r\n"
    ).encode() + image


def server_read_all(port: int) -> bool:
    """True when the server side has accepted connections on `port` and read all they sent."""
    lines = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return bool(lines) and all(line.split()[0] == "0" for line in lines)


def pipelined(port: int, request: str, clients: int, each: int) -> list[socket.socket]:
    """Clients that each pipeline a request `each` times and never read (small receive buffers)."""
    socks = []
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(request.encode() * each)
        socks.append(sock)
    return socks
