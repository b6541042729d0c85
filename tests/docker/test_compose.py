"""The compose deployment end to end: build, serve a real image, train, promote, hot reload.

Runs the README's compose commands as they are written; only the environment differs: its own
project name, a free loopback port, a fresh admin token and the local base image, so a run never
touches a deployment of the user's and cleans up after itself (`down -v`) even when it fails.
"""

import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from service.contract import CLASS_NAMES
from tests.docker.engine import BASE_IMAGE, REPO, buildkit_path, prepare_engine, run
from tests.e2e.server import free_port
from tests.images import png
from training import data

# Cold builds download TensorFlow; the suite's default timeout is for tests without images.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

MODEL = "fashion-mnist"
IMAGES = 100  # real test images posted as one batch; enough to tell a model from chance
HEALTHY_TIMEOUT = 240  # seconds from `up -d` to healthy; generous for a busy two-core machine
RELOAD_TIMEOUT = 60  # seconds for every worker to answer with a newly promoted version


def compose_command() -> list[str]:
    """`docker compose` (v2) when the docker CLI has it, else docker-compose (1.29 on Debian)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed")


class Deployment:
    """One compose project of this repo and the means to drive and inspect it."""

    def __init__(self, work: Path) -> None:
        self.compose = compose_command()
        self.token = secrets.token_urlsafe(32)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "PATH": buildkit_path(work / "bin"),
            # docker-compose 1.29 builds through the docker CLI, and so with BuildKit, only so.
            "COMPOSE_DOCKER_CLI_BUILD": "1",
            "DOCKER_BUILDKIT": "1",
            "COMPOSE_PROJECT_NAME": f"fashion-e2e-{uuid.uuid4().hex[:10]}",
            "FASHION_PUBLISH": f"127.0.0.1:{port}",
            "FASHION_ADMIN_TOKEN": self.token,
            "FASHION_BASE_IMAGE": BASE_IMAGE,
            # Its own tags: the test never replaces the user's fashion-serve:latest.
            "FASHION_TAG": "e2e",
        }

    def __call__(self, args: str, timeout: float = 600) -> str:
        """Run `docker compose ARGS` exactly as the README writes it."""
        return run([*self.compose, *args.split()], self.env, timeout)

    def container(self, service: str = "api") -> str:
        """The id of the service's running container."""
        ids = self(f"ps -q {service}", timeout=60).split()
        assert len(ids) == 1, f"expected one {service} container, found {ids}"
        return ids[0]

    def inspect(self, container: str, template: str) -> str:
        """One `docker inspect --format` value of a container."""
        return run(["docker", "inspect", "--format", template, container], self.env, 60).strip()

    def wait_healthy(self, container: str) -> float:
        """Seconds until Docker reports the container healthy; fails if it stops or never is."""
        started = time.monotonic()
        while time.monotonic() - started < HEALTHY_TIMEOUT:
            state = self.inspect(container, "{{.State.Status}} {{.State.Health.Status}}")
            if state == "running healthy":
                return time.monotonic() - started
            assert state.startswith("running"), f"api container is {state}:\n{self('logs api')}"
            time.sleep(1)
        pytest.fail(f"api not healthy after {HEALTHY_TIMEOUT} s:\n{self('logs api')}")

    def predict(self, images: np.ndarray) -> dict:
        """POST the images as PNG files to /predict in one batch; the JSON answer."""
        files = [("image", (f"{i}.png", png(image), "image/png")) for i, image in enumerate(images)]
        response = requests.post(f"{self.url}/predict", files=files, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def promote(self, version: int, token: str) -> requests.Response:
        """The README's promote call: PUT the production alias with a bearer token."""
        return requests.put(
            f"{self.url}/models/{MODEL}/aliases/production",
            json={"version": version},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )


def real_test_images() -> tuple[np.ndarray, np.ndarray]:
    """The first IMAGES real Fashion-MNIST test images and their labels."""
    paths = data.locate(data.DEFAULT_DIR)
    images, _ = data.read_idx(paths["test_images"], data.IMAGES_MAGIC)
    labels, _ = data.read_idx(paths["test_labels"], data.LABELS_MAGIC)
    return images[:IMAGES], labels[:IMAGES]


def check_predictions(answer: dict, labels: np.ndarray, version: int) -> float:
    """Every prediction well formed (ten named probabilities summing to 1); the accuracy."""
    assert answer["model"] == {"name": MODEL, "version": version, "alias": "production"}
    predictions = answer["predictions"]
    assert len(predictions) == len(labels)
    for prediction in predictions:
        probabilities = prediction["probabilities"]
        assert list(probabilities) == list(CLASS_NAMES)
        values = np.array(list(probabilities.values()))
        assert np.all((values >= 0) & (values <= 1))
        assert values.sum() == pytest.approx(1, abs=1e-4)
        assert prediction["class_id"] == int(values.argmax())
        assert prediction["label"] == CLASS_NAMES[prediction["class_id"]]
        assert prediction["confidence"] == pytest.approx(values.max())
    return float(np.mean(np.array([p["class_id"] for p in predictions]) == labels))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The images built and `up -d` healthy; always torn down with `down -v`."""
    prepare_engine()
    compose = Deployment(tmp_path_factory.mktemp("docker"))
    try:
        # The same commands as the README, in the same order.
        started = time.monotonic()
        compose("build")
        compose("--profile train build train")
        print(f"images built in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        compose("up -d")
        compose.wait_healthy(compose.container())
        print(f"compose up -d to healthy in {time.monotonic() - started:.1f} s")
        yield compose
    finally:
        compose("down -v", timeout=300)


def test_compose_file_is_valid_with_every_profile() -> None:
    """The compose file parses; the token is read from the environment, not written in it."""
    env = {**os.environ, "FASHION_ADMIN_TOKEN": "from-the-environment"}
    config = run(
        [*compose_command(), "--profile", "train", "--profile", "gpu", "config"], env, timeout=120
    )
    for service in ("api:", "train:", "api-gpu:"):
        assert service in config
    assert "from-the-environment" in config
    compose_file = (REPO / "docker-compose.yml").read_text()
    assert "FASHION_ADMIN_TOKEN: ${FASHION_ADMIN_TOKEN:-}" in compose_file


def test_serves_trains_promotes_and_hot_reloads(deployment: Deployment) -> None:
    """Real images answered, a version trained in a container and promoted: no api restart.

    The running api answers a batch of real test images; the train service registers a new
    version in the shared registry volume; the API promotes it; the same container, never
    restarted, then answers with the new version from every worker.
    """
    images, labels = real_test_images()
    container = deployment.container()
    started_at = deployment.inspect(container, "{{.State.StartedAt}}")

    shipped = deployment.predict(images)
    shipped_version = shipped["model"]["version"]
    assert check_predictions(shipped, labels, shipped_version) >= 0.8

    output = deployment("--profile train run --rm train --epochs 1 --train-limit 5000", 900)
    registered = re.search(rf"registered {MODEL} version (\d+)", output)
    assert registered, output
    new_version = int(registered.group(1))
    assert new_version > shipped_version
    listed = requests.get(f"{deployment.url}/models/{MODEL}", timeout=30).json()
    assert new_version in [v["version"] for v in listed["versions"]]
    # Trained but not promoted: production still answers with the shipped version.
    assert deployment.predict(images[:1])["model"]["version"] == shipped_version

    assert deployment.promote(new_version, "not-the-token").status_code == 401
    promoted = deployment.promote(new_version, deployment.token)
    assert promoted.status_code == 200, promoted.text

    # Every worker must switch: several answers in a row from the new version.
    deadline, in_a_row = time.monotonic() + RELOAD_TIMEOUT, 0
    while in_a_row < 8:
        assert time.monotonic() < deadline, "the api still answers with the old version"
        answer = deployment.predict(images)
        in_a_row = in_a_row + 1 if answer["model"]["version"] == new_version else 0
    # One epoch on 5000 images: well above chance (10 %), below the shipped model.
    assert check_predictions(answer, labels, new_version) >= 0.6

    assert deployment.inspect(container, "{{.State.StartedAt}}") == started_at
    assert deployment.inspect(container, "{{.RestartCount}}") == "0"
    assert deployment.container() == container
