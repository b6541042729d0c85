"""Shared fixtures: temporary registries holding tiny real ONNX models, and isolated apps."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation.real_pictures import ENV_VAR as REAL_PICTURES_ENV
from service.core import Core
from service.http import create_app
from service.registry import Registry
from service.settings import Settings
from tests.tiny_models import register_tiny

MODEL = "fashion-mnist"


@pytest.fixture(autouse=True, scope="session")
def _no_fetched_real_pictures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read a developer's fetched real-picture set: a gate's verdict in a test must
    not depend on the machine (tests that need the set render a committed fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(REAL_PICTURES_ENV, str(tmp_path_factory.getbasetemp() / "no-real-pictures"))
        yield


def tiny_registry(tmp_path: Path) -> Registry:
    """A registry in tmp_path/models with two tiny versions; production → 1, staging → 2."""
    root = tmp_path / "models"
    root.mkdir()
    reg = Registry(root)
    for seed in (1, 2):
        register_tiny(reg, MODEL, seed, tmp_path)
    reg.set_alias(MODEL, "production", 1)
    reg.set_alias(MODEL, "staging", 2)
    return reg


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """A registry with two tiny versions of fashion-mnist; production → 1, staging → 2."""
    return tiny_registry(tmp_path)


@pytest.fixture
def settings(registry: Registry) -> Settings:
    """Settings pointing at the temporary registry, with a fast alias poller."""
    return Settings(model_dir=registry.root, reload_interval=0.1, admin_token="s3cret-token")


@pytest.fixture
def service(settings):
    """A started core over the temporary registry; closed after the test."""
    core = Core(settings)
    core.start()
    yield core
    core.close()


@pytest.fixture
def app(settings):
    """The Flask app over the temporary registry, models loaded; closed after the test."""
    app = create_app(settings)
    yield app
    app.extensions["fashion_serve"].close()


@pytest.fixture
def client(app):
    return app.test_client()
