"""The built wheel installs in a clean venv with its dependencies and serves; `pip install .` works.

Nothing is downloaded: the wheel is built without build isolation (setuptools of the test venv),
and its dependencies come from uv's cache, offline, exactly as uv.lock pins the serving set (the
test venv's own install put them there), so the venv holds that set, the wheel, nothing else.
`pip install .` (pip itself, from a copy of the tree) is checked for the console scripts.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests

from tests.conftest import MODEL
from tests.e2e.server import REPO, GunicornServer
from tests.images import dark_images, png
from tests.test_locks import uv

pytestmark = pytest.mark.slow
SOURCES = ("pyproject.toml", "README.md", "service", "training", "evaluation")
PACKAGES = ("service", "training", "evaluation")


def source_files(root: Path) -> set[str]:
    """Every file of the packages below root, as relative paths (no bytecode)."""
    return {
        str(path.relative_to(root))
        for package in PACKAGES
        for path in (root / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def copy_sources(target: Path) -> Path:
    """A copy of what the package is built from (a build writes into its source folder)."""
    target.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(REPO / name, target / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A clean venv with the built wheel and the locked serving dependencies, nothing else."""
    work = tmp_path_factory.mktemp("wheel")
    source = copy_sources(work / "source")
    subprocess.run(
        [uv(), "build", "--wheel", "--offline", "--no-build-isolation", "--python", sys.executable,
         "--out-dir", work / "dist", source],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (work / "dist").glob("fashion_serve-*-py3-none-any.whl")
    # The serving set exactly as locked, as `make serve` installs it (wheels from uv's cache),
    # into a fresh venv; then the wheel alone. Nothing of the test venv is visible there.
    venv = work / "venv"
    project = work / "project"
    project.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy2(REPO / name, project)
    subprocess.run(
        [uv(), "sync", "--locked", "--offline", "--no-default-groups", "--no-install-project",
         "--python", sys.executable, "--directory", project],
        check=True, capture_output=True, env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
    )  # fmt: skip
    subprocess.run(
        [uv(), "pip", "install", "--offline", "--no-deps", "--python", venv / "bin" / "python",
         wheel],
        check=True, capture_output=True,
    )  # fmt: skip
    return venv


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv / "bin" / args[0], *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_every_module_and_data_file_is_installed(installed, tmp_path):
    site = run(installed, "python", "-c", "import service; print(service.__file__)", cwd=tmp_path)
    root = Path(site.stdout.strip()).parents[1]
    assert root.is_relative_to(installed)  # the installed copy, not the repository's
    assert source_files(root) == source_files(REPO)


def test_the_serving_install_holds_neither_tensorflow_nor_onnx(installed, tmp_path):
    found = "[m for m in ('tensorflow', 'onnx') if u.find_spec(m)]"
    script = f"import importlib.util as u; print({found})"
    assert run(installed, "python", "-c", script, cwd=tmp_path).stdout.strip() == "[]"


def test_fashion_registry_and_fashion_train_run_from_anywhere(installed, tmp_path):
    listing = run(
        installed, "fashion-registry", "--root", str(REPO / "models"), "list", cwd=tmp_path
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("fashion-mnist  versions: 1")
    verify = run(
        installed, "fashion-registry", "--root", str(REPO / "models"), "verify", cwd=tmp_path
    )
    assert verify.stdout.startswith("OK fashion-mnist"), verify.stdout + verify.stderr
    usage = run(installed, "fashion-train", "--help", cwd=tmp_path)
    assert usage.returncode == 0, usage.stderr
    assert "--epochs" in usage.stdout


def test_fashion_serve_finds_its_gunicorn_config_in_the_install(installed, registry, tmp_path):
    command = [str(installed / "bin" / "fashion-serve")]
    with GunicornServer(registry.root, tmp_path / "log", 1, command, cwd=tmp_path) as server:
        response = requests.post(
            f"{server.url}/predict", files={"image": png(dark_images(1)[0])}, timeout=30
        )
        assert response.status_code == 200
        assert response.json()["model"] == {"name": MODEL, "version": 1, "alias": "production"}
    # Only the project's gunicorn.conf.py logs this, and tmp_path holds no copy of it.
    assert "fashion-serve: registry" in server.log()


def test_pip_install_of_the_source_tree_gives_working_console_scripts(tmp_path):
    """pip's own `pip install .` (no build isolation, no dependencies: nothing to download)."""
    source = copy_sources(tmp_path / "source")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)  # with pip, from ensurepip
    # The test venv's packages stand in for the dependencies, through a .pth file.
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # ensurepip's old setuptools would shadow the locked one (the build backend) found that way.
    pip = [venv / "bin" / "python", "-m", "pip"]
    subprocess.run([*pip, "uninstall", "--yes", "--quiet", "setuptools"], check=True)
    subprocess.run(
        [*pip, "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", source],
        check=True, capture_output=True,
    )  # fmt: skip
    for script in ("fashion-serve", "fashion-train", "fashion-registry"):
        assert (venv / "bin" / script).exists()
    usage = run(venv, "fashion-registry", "--help", cwd=tmp_path)
    assert usage.returncode == 0, usage.stderr
