"""Helpers the container tests share: the local engine, commands with their output, BuildKit."""

import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DOCKER = REPO.parent / "shared" / "docker"
BASE_IMAGE = os.environ.get("FASHION_BASE_IMAGE", "local/python:3.11-slim")


def prepare_engine() -> None:
    """A running engine with docker-compose, and the local stand-in for the base image."""
    for script in ("ensure-engine.sh", "build-local-base.sh"):
        run(["bash", str(SHARED_DOCKER / script)], dict(os.environ), timeout=900)


def run(command: list[str], env: dict[str, str], timeout: float, check: bool = True) -> str:
    """Run a command in the repo; its output, or a failure that shows that output."""
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(f"$ {' '.join(command)}  ({time.monotonic() - started:.1f} s)")
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result.stdout + result.stderr


def buildkit_path(bin_dir: Path) -> str:
    """A PATH on which `docker build` uses BuildKit, which builds only the stages a target needs.

    Without it the classic builder runs every stage before `serve`, TensorFlow and gigabytes of
    CUDA wheels included. A docker CLI of 23 or newer needs the buildx plugin for BuildKit; the
    engine's own CLI from Debian's docker.io (20.10) speaks it natively, so it goes first when
    the CLI found first has no buildx.
    """
    path = os.environ["PATH"]
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0:
        return path
    engine_cli = Path("/usr/bin/docker")
    version = subprocess.run(
        [str(engine_cli), "version", "--format", "{{.Client.Version}}"],
        capture_output=True,
        text=True,
    )
    if version.returncode != 0 or int(version.stdout.split(".")[0]) >= 23:
        pytest.fail("no BuildKit: install the buildx plugin for the docker CLI")
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to(engine_cli)
    return f"{bin_dir}{os.pathsep}{path}"
