"""The servers under test: how each starts, stops, and what it costs in CPU and memory."""

import hashlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.workload import MODEL_NAME, ROOT, SERVER_CPU
from tests.e2e.server import free_port

BENCH = ROOT / "bench"
REFERENCE_VENV = BENCH / ".venv-reference"
REFERENCE_REQUIREMENTS = BENCH / "reference" / "requirements.txt"
READY_TIMEOUT = 120.0
NAIVE_APP = "bench.reference.naive_flask:app"
OURS, GTHREAD = "fashion-serve", "fashion-serve gthread"
FASTAPI, NAIVE = "FastAPI+uvicorn", "naive Flask"


@dataclass
class Stack:
    """A server under test: how to start it, and what was measured of it."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    cwd: Path = ROOT
    ready_seconds: list[float] = field(default_factory=list)
    memory: list[dict[str, float]] = field(default_factory=list)
    runs: dict[str, list[dict]] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)


def stacks(
    registry: Path, version: int, model: Path, work: Path, baseline: str | None
) -> list[Stack]:
    """fashion-serve (its worker, and gthread), FastAPI+uvicorn, naive Flask, and a baseline.

    Each runs one worker and serves the same model file. The baseline is fashion-serve as of a
    git revision (its files exported with `git archive`), served with the same venv.
    """
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    refs = {
        **_shared(),
        "BENCH_MODEL": str(model),
        "BENCH_MODEL_NAME": MODEL_NAME,
        "BENCH_MODEL_VERSION": str(version),
    }
    found = [ours(registry, work), ours(registry, work, GTHREAD, FASHION_WORKER_CLASS="gthread")]
    if baseline:
        found.append(ours(registry, work, f"fashion-serve @{baseline}", _export(baseline, work)))
    fast, naive = free_port(), free_port()
    reference = _reference_python()
    uvicorn = [str(reference.parent / "uvicorn"), "bench.reference.fastapi_app:app"]
    found += [
        Stack(
            FASTAPI,
            [*uvicorn, "--loop", "uvloop", "--http", "httptools", "--port", str(fast)],
            refs,
            fast,
        ),
        Stack(
            NAIVE,
            [gunicorn, "-w", "1", "-b", f"127.0.0.1:{naive}", "--no-control-socket", NAIVE_APP],
            refs,
            naive,
        ),
    ]
    return found


def _shared() -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def ours(registry: Path, work: Path, name: str = OURS, cwd: Path = ROOT, **extra: str) -> Stack:
    """fashion-serve under gunicorn with one worker (FASHION_* in extra override), from cwd."""
    port = free_port()
    env = {
        **_shared(),
        "PYTHONPATH": str(cwd),
        "FASHION_MODEL_DIR": str(registry),
        "FASHION_BIND": f"127.0.0.1:{port}",
        "FASHION_WORKERS": "1",
        "FASHION_DEVICE": "cpu",
        "PROMETHEUS_MULTIPROC_DIR": str(work / f"metrics-{port}"),
        **extra,
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "-c", "service/gunicorn.conf.py", "service.wsgi:app"]
    return Stack(name, command, env, port, cwd)


def _export(revision: str, work: Path) -> Path:
    """The repository's files at a revision, in a folder of their own."""
    folder = work / f"rev-{revision.replace('/', '-')}"
    archive = work / "rev.tar"
    subprocess.run(["git", "archive", "-o", str(archive), revision], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _reference_python() -> Path:
    """The reference venv's python, (re)built with uv when its pinned requirements changed."""
    python = REFERENCE_VENV / "bin" / "python"
    stamp = REFERENCE_VENV / ".requirements-sha256"
    wanted = hashlib.sha256(REFERENCE_REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    uv = shutil.which("uv") or "uv"  # make puts the uv it bootstrapped (.uv/bin) on PATH
    print(f"# building {REFERENCE_VENV} with uv", file=sys.stderr)
    if not python.exists():
        subprocess.run([uv, "venv", str(REFERENCE_VENV), "--python", "python3"], check=True)
    subprocess.run(
        [uv, "pip", "install", "--python", str(python), "-r", str(REFERENCE_REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(wanted)
    return python


@contextmanager
def running(stack: Stack, log: Path, cpus: str | None = SERVER_CPU) -> Iterator[subprocess.Popen]:
    """Start a stack (pinned to `cpus` with taskset, unless None), wait until ready, stop it."""
    pin = ["taskset", "-c", cpus] if cpus else []
    started = time.monotonic()
    with log.open("ab") as out:
        server = subprocess.Popen(
            [*pin, *stack.command],
            cwd=stack.cwd,
            env=stack.env,
            stdout=out,
            stderr=out,
            start_new_session=True,  # one process group: stopping it stops gunicorn's workers too
        )
    try:
        _wait_ready(stack.port, server)
        stack.ready_seconds.append(time.monotonic() - started)
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers=None, host="127.0.0.1"
):
    """One request on a fresh connection: (status, body)."""
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_ready(port: int, server: subprocess.Popen) -> None:
    """Poll /readyz until it answers 200; raise if the server exits or takes too long."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with status {server.returncode} before ready")
        try:
            if request(port, "GET", "/readyz")[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.01)
    raise RuntimeError(f"not ready after {READY_TIMEOUT:.0f} s")


def processes(pid: int) -> list[int]:
    """The server process and its children (gunicorn's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server and its workers.

    On a shared host wall-clock req/s swings with the neighbours' load; the CPU time the server
    itself spends per request does not as much, so it is reported beside req/s.
    """
    total = 0
    for process in processes(pid):
        # Fields after the command name (which may hold spaces): utime and stime are 12th, 13th.
        fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def worker_memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of the process serving requests (gunicorn's worker, or uvicorn itself).

    RSS counts every shared library page the process touched, though all workers share them;
    USS (its private pages) is what one more worker adds, PSS its fair share of the shared ones.
    """
    found = processes(pid)
    worker = found[1] if len(found) > 1 else pid
    fields = {}
    for line in Path(f"/proc/{worker}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields["Private_Clean"] + fields["Private_Dirty"],
    }
