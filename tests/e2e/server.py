"""Start the real service under gunicorn on a free loopback port, for end-to-end tests."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GunicornServer:
    """The service under gunicorn as a subprocess; its log goes to a file the test can read.

    By default `python -m service` from the repository; `command` and `cwd` run another copy
    (an installed console script, say) the same way.
    """

    def __init__(
        self,
        model_dir: Path,
        log_path: Path,
        workers: int = 2,
        command: list[str] | None = None,
        cwd: Path = REPO,
        **env: str,
    ) -> None:
        self.command = command or [sys.executable, "-m", "service"]
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.workers = workers
        self.env = {
            **os.environ,
            "FASHION_MODEL_DIR": str(model_dir),
            "FASHION_BIND": f"127.0.0.1:{self.port}",
            "FASHION_WORKERS": str(workers),
            "FASHION_RELOAD_INTERVAL": "0.2",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> "GunicornServer":
        """Start gunicorn and wait until every worker has answered /readyz with 200.

        Workers load their models after fork, so one can serve while another still loads.
        """
        self.ready_workers: set[int] = set()  # pids that have answered /readyz with 200
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(self._ready, "every worker to answer /readyz with 200", timeout, interval=0.1)
        except pytest.fail.Exception:
            self.stop()
            raise RuntimeError(f"gunicorn not ready after {timeout} s:\n{self.log()}") from None
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited {self.process.returncode}:\n{self.log()}")
        try:
            response = requests.get(f"{self.url}/readyz", timeout=5)
        except requests.RequestException:  # not listening yet, or busy booting
            return False
        if response.status_code == 200:
            self.ready_workers.add(response.json()["pid"])
        return len(self.ready_workers) == self.workers

    def worker_versions(self, seen: dict[int, int], alias: str = "production") -> dict[int, int]:
        """Note, by worker pid, the version an alias serves in whichever worker answers /readyz.

        Each call opens a new connection, so over calls every worker answers; returns `seen`.
        """
        status = requests.get(f"{self.url}/readyz", timeout=10).json()
        (entry,) = [s for s in status["serving"] if s["alias"] == alias]
        seen[status["pid"]] = entry["version"]
        return seen

    def log(self) -> str:
        """Everything gunicorn and the app have logged so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), then kill if it hangs."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "GunicornServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
