"""`pip install .` into a fresh venv gives the package, its data files and working console scripts.

Only the project is installed here (uv, offline, no build isolation): its dependencies come from
the test venv through a .pth file, so the test downloads nothing and takes seconds. The pins
themselves are tested by every `make` install from requirements/*.lock; this checks packaging:
the listed packages and data, the entry points, and gunicorn's config found from the install.
"""

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

pytestmark = pytest.mark.slow
SOURCES = (
    "pyproject.toml", "README.md", "MANIFEST.in", "requirements", "service", "training",
    "evaluation",
)  # fmt: skip
PACKAGES = ("service", "training", "evaluation")
UV = Path(sys.executable).with_name("uv")


def source_files(root: Path) -> set[str]:
    """Every file of the packages below root, as relative paths (no bytecode)."""
    return {
        str(path.relative_to(root))
        for package in PACKAGES
        for path in (root / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the project installed from a copy of the tree (the build writes there)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(REPO / name, source / name)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [UV, "pip", "install", "--python", venv / "bin" / "python", "--offline", "--no-deps",
         "--no-build-isolation", "--quiet", source],
        check=True,
        capture_output=True,
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
