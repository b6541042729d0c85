"""Poll a condition with a deadline: how tests wait, never with a blind sleep."""

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    what: str = "the condition",
    timeout: float = 30.0,
    interval: float = 0.05,
    process: subprocess.Popen | None = None,
) -> T:
    """Poll until condition() returns something truthy, and return it; fail at the deadline.

    With a process, fail at once (showing its stderr) if it exits before the condition holds.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if process is not None and process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            pytest.fail(f"child exited before {what}: {stderr}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return value
