"""Helpers the container tests share: the local engine, commands with their output, BuildKit."""

import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER_SCRIPTS = REPO / "deploy" / "docker"
NO_ENGINE = 3  # deploy/docker/engine.sh: no engine can run on this machine


def prepare_engine() -> str:
    """A running engine with Compose, and the base image's name (FASHION_BASE_IMAGE if set).

    Where no engine can run (no root to start one, no Debian to install one), the container
    tests are skipped with engine.sh's reason; any other failure of it fails them.
    """
    engine = subprocess.run(
        ["bash", str(DOCKER_SCRIPTS / "engine.sh")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if engine.returncode == NO_ENGINE:
        pytest.skip(engine.stderr.strip().splitlines()[-1])
    if engine.returncode != 0:
        pytest.fail(f"deploy/docker/engine.sh failed:\n{engine.stdout}\n{engine.stderr}")
    given = os.environ.get("FASHION_BASE_IMAGE")
    if given:
        return given
    output = run(["bash", str(DOCKER_SCRIPTS / "base-image.sh")], dict(os.environ), timeout=900)
    return output.strip().splitlines()[-1]


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
