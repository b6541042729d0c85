"""Shared fixtures: temporary registries holding tiny real ONNX models, and isolated apps."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from evaluation.real_pictures import ENV_VAR as REAL_PICTURES_ENV
from service.core import Core
from service.http import create_app
from service.registry import Registry
from service.settings import Settings
from tests.tiny_models import register_novelty, register_tiny
from training import data

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


class NoveltyReference:
    """What a judging tiny version is built from: the training images' mean picture, and the
    threshold that flags 5 % of the first 1,000 test images (the contract's false-alarm rate)."""

    def __init__(self) -> None:
        dataset = data.load(data.DEFAULT_DIR)
        self.test_images = dataset.test_images[:1000]
        self.mean = (dataset.train_images.astype(np.float32) / 255).mean(axis=0)
        self.threshold = float(np.quantile(self.novelty(self.test_images), 0.95))

    def novelty(self, pixels: np.ndarray) -> np.ndarray:
        """The tiny model's score computed here in numpy, for uint8 pictures [N,28,28]."""
        offset = pixels.astype(np.float32) / 255 - self.mean
        return (offset**2).reshape(len(pixels), -1).mean(axis=1)

    def clothing(self) -> np.ndarray:
        """A real test image well inside the threshold."""
        return self.test_images[int(np.argmax(self.novelty(self.test_images) < self.threshold / 2))]


@pytest.fixture(scope="session")
def novelty_reference() -> NoveltyReference:
    return NoveltyReference()


@pytest.fixture
def judging(registry: Registry, tmp_path: Path, novelty_reference: NoveltyReference) -> int:
    """Version 3 of the tiny registry: a model that judges its inputs, with its card's entry."""
    reference = novelty_reference
    return register_novelty(registry, MODEL, tmp_path, reference.mean, reference.threshold)
