"""deploy/docker/engine.sh where no engine can run: a clear reason and exit 3 (tests skip on it).

Run for real as an unprivileged user (nobody), who can neither reach a root engine's socket nor
install or start one: the case of a developer's machine without Docker access.
"""

import os
import shutil
import subprocess

import pytest

from tests.docker.engine import DOCKER_SCRIPTS, NO_ENGINE

NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_an_unprivileged_user_is_told_why_there_is_no_engine():
    result = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "bash", str(DOCKER_SCRIPTS / "engine.sh")],
        capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert result.returncode == NO_ENGINE, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "no Docker engine: none answers, and only root can install and start one"
    )
