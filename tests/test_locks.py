"""uv.lock is the project's one lock, and it matches pyproject.toml's dependencies.

A dependency changed in pyproject.toml without `make lock` fails here, offline, before anything
ships (`uv sync --locked` in the Makefile and the Dockerfile refuses such a lock too).
"""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def uv() -> str:
    """The uv the Makefile bootstrapped (on PATH under make), else the repository's copy."""
    found = shutil.which("uv") or REPO / ".uv" / "bin" / "uv"
    if not Path(found).exists():
        pytest.fail("uv is missing: run the tests through make (it bootstraps uv into .uv/)")
    return str(found)


def lock_check(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [uv(), "lock", "--check", "--offline", "--directory", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def requirements() -> list[str]:
    """Every requirement pyproject.toml declares: the package's, its extras', the groups'."""
    project = PYPROJECT["project"]
    found = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        found += extra
    for group in PYPROJECT["dependency-groups"].values():
        found += [item for item in group if isinstance(item, str)]
    return found


def test_the_lock_matches_pyproject():
    result = lock_check(REPO)
    assert result.returncode == 0, result.stderr


def test_a_dependency_added_without_relocking_is_refused(tmp_path):
    """The check has teeth: pyproject.toml one dependency ahead of its lock fails it.

    The same copy passes before the change. Offline, uv can tell a stale lock only by resolving
    anew; on a machine whose cache has no index pages (a fresh CI) that resolution itself is what
    fails, which refuses the lock all the same.
    """
    for name in ("uv.lock", "README.md", "pyproject.toml"):
        shutil.copy2(REPO / name, tmp_path)
    for package in ("service", "training", "evaluation"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    assert lock_check(tmp_path).returncode == 0
    text = (REPO / "pyproject.toml").read_text()
    ahead = text.replace('  "flask>=', '  "requests>=2,<3",\n  "flask>=', 1)
    assert ahead != text
    (tmp_path / "pyproject.toml").write_text(ahead)
    result = lock_check(tmp_path)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr or "network was disabled" in result.stderr, (
        result.stderr
    )


@pytest.mark.parametrize("requirement", requirements())
def test_requirements_are_ranges_the_lock_pins(requirement):
    """pyproject.toml states what works (a range); only uv.lock pins exact versions."""
    assert "==" not in requirement
    assert re.search(r">=\s*\d", requirement), f"{requirement}: give the lowest version tested"


def test_uv_lock_is_the_one_lock():
    assert not (REPO / "requirements").exists()
    assert sorted(p.name for p in REPO.glob("*.lock")) == ["uv.lock"]
