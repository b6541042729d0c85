"""The worker's parsing cost per request in callgrind instructions, this tree against a revision.

Run: `.venv/bin/python -m bench.http1_parse [--against main] [--calls 2000]`. Feeds one
single-image multipart request (as hey sends it) to service/http1.py's Connection and builds its
WSGI environ, `calls` times and 100 times, under callgrind; the difference over the difference
in calls is the exact cost of one request. The other revision's http1.py is read with `git show`.
"""

import argparse
import importlib.util
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
BASE_CALLS = 100


def run(module_path: Path, calls: int) -> None:
    """The measured loop (inside callgrind)."""
    from tests.images import dark_images, png

    spec = importlib.util.spec_from_file_location("http1_measured", module_path)
    assert spec is not None
    assert spec.loader is not None
    http1 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(http1)
    part = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
    body = part + b"Content-Type: image/png\r\n\r\n" + png(dark_images(1)[0]) + b"\r\n--b--\r\n"
    request = (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: hey/0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nAccept-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    sock, _peer = socket.socketpair()  # the peer must stay open while the socket is used
    conn = http1.Connection(
        SimpleNamespace(max_body=1 << 24, buffered=0), sock, ("127.0.0.1", 1), ("", 8000)
    )
    if hasattr(conn, "feed"):
        feed = conn.feed
    else:  # before the feed method: what the worker did itself

        def feed(data: bytes) -> None:
            conn.parser.feed_data(data)
            if conn.in_head:
                conn.count_head(data)

    for _ in range(calls):
        feed(request)
        http1.wsgi_environ(conn, conn.ready.popleft())


def instructions(module_path: Path, calls: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/out",
                sys.executable,
                "-m",
                "bench.http1_parse",
                "--inside",
                str(module_path),
                str(calls),
            ],
            cwd=ROOT,
            env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stderr
    match = re.search(r"Collected : (\d+)", out)
    assert match, out
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="main")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--inside", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        run(Path(args.inside[0]), int(args.inside[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "http1.py"
        other.write_text(
            subprocess.run(
                ["git", "show", f"{args.against}:service/http1.py"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        costs = {}
        for name, path in ((args.against, other), ("this tree", ROOT / "service/http1.py")):
            total = instructions(path, args.calls) - instructions(path, BASE_CALLS)
            costs[name] = total / (args.calls - BASE_CALLS)
            print(f"{name}: {costs[name]:,.0f} instructions per request")
    print(f"this tree ÷ {args.against}: {costs['this tree'] / costs[args.against]:.3f}×")


if __name__ == "__main__":
    main()
