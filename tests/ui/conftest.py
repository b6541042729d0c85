"""Real headless Chromium (Debian's) driven by playwright against the service under gunicorn."""

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from service.registry import Registry
from service.runtime import CPU, OnnxModel
from tests.e2e.server import GunicornServer
from tests.tiny_models import register_novelty, tiny_card, tiny_cnn, tiny_mlp
from training import quantize

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"  # Debian's package: playwright never downloads a browser here
ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "ui-test-token"
MODEL = "fashion-mnist"
UPLOAD_LIMIT = 1_000_000  # small, so that the oversized-upload test sends little


@pytest.fixture(scope="module")
def registry(tmp_path_factory, novelty_reference) -> Registry:
    """The shipped v1 in production, a small MLP as version 2, a small CNN as 3, as 4 a tiny
    model that judges its inputs (novelty: distance from the mean training image), and as 5
    version 3 with int8 convolutions, its card as training.quantize writes it."""
    tmp = tmp_path_factory.mktemp("ui")
    # Only the shipped v1: the page tests name versions by number, whatever the repo ships next.
    shutil.copytree(REPO / "models" / MODEL / "1", tmp / "models" / MODEL / "1")
    registry = Registry(tmp / "models")
    registry.set_alias(MODEL, "production", 1)
    path = tmp / "mlp.onnx"
    path.write_bytes(tiny_mlp(seed=11, hidden=32)[0])
    registry.register(MODEL, path, {**tiny_card(11), "architecture": {"name": "tiny-mlp-32"}})
    cnn = tiny_cnn(seed=12)[0]
    path.write_bytes(cnn)
    registry.register(MODEL, path, {**tiny_card(12), "architecture": {"name": "tiny-cnn"}})
    register_novelty(registry, MODEL, tmp, novelty_reference.mean, novelty_reference.threshold)
    images = np.random.default_rng(0).random((64, 28, 28), dtype=np.float32)
    int8 = quantize.quantized(cnn, images)
    path.write_bytes(int8)
    answers = [OnnxModel(graph, [CPU]).run_judged(images) for graph in (cnn, int8)]
    card = {**tiny_card(12), "architecture": {"name": "tiny-cnn"}}
    card["parity"] = quantize.parity(*answers, against=3, floor=0.5)
    card["quantization"] = {"from_version": 3}
    registry.register(MODEL, path, card)
    return registry


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    log = tmp_path_factory.mktemp("ui-log") / "gunicorn.log"
    env = {"FASHION_ADMIN_TOKEN": TOKEN, "FASHION_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    with GunicornServer(registry.root, log, workers=2, **env) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


class Visit:
    """One browser tab on the service, recording every request it makes and every script error."""

    def __init__(self, browser, server, name: str, **context) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.server, self.name = server, name
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, fragment: str = "") -> None:
        self.page.goto(f"{self.server.url}/{fragment}")
        self.page.wait_for_selector("body[data-ready=true]")

    def screenshot(self, label: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def assert_stayed_home(self) -> None:
        """Every request went to the service on 127.0.0.1 (or stayed inside the page)."""
        assert self.requests
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("blob", "data"):
                continue
            assert (parts.scheme, parts.hostname, parts.port) == (
                "http",
                "127.0.0.1",
                self.server.port,
            ), url
        assert not self.errors, self.errors


@pytest.fixture
def visit(browser, server, request):
    visit = Visit(browser, server, request.node.name)
    yield visit
    visit.context.close()
