"""The compose deployment end to end: build, serve through the HTTPS proxy, train, promote, reload.

Runs the README's compose commands as they are written; only the environment differs: its own
project name, free loopback ports, its own back network, a fresh admin token, a self-signed
certificate made for the run and the base image deploy/docker/base-image.sh names, so a run
never touches a deployment of the user's and cleans up after itself (`down -v`) even when it
fails.
"""

import datetime
import json
import os
import random
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from service.contract import CLASS_NAMES
from tests.docker.engine import REPO, buildkit_path, prepare_engine, run
from tests.e2e.server import free_port
from tests.images import png
from training import data

# Cold builds download TensorFlow; the suite's default timeout is for tests without images.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

MODEL = "fashion-mnist"
IMAGES = 100  # real test images posted as one batch; enough to tell a model from chance
HEALTHY_TIMEOUT = 240  # seconds from `up -d` to healthy; generous for a busy two-core machine
RELOAD_TIMEOUT = 60  # seconds for every worker to answer with a newly promoted version
READY_TIMEOUT = 60  # seconds from a restart of the api to ready through the proxy
PROMETHEUS_TIMEOUT = 120  # seconds from `--profile monitoring up -d` to a recorded value
# The upload limit of this run, given to the api and the proxy alike (the default is 16 MiB).
UPLOAD_LIMIT = 1_000_000


def compose_command() -> list[str]:
    """`docker compose` (v2) when the docker CLI has it, else docker-compose (1.29 on Debian)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed")


class Deployment:
    """One compose project of this repo and the means to drive and inspect it."""

    def __init__(self, work: Path, base_image: str) -> None:
        self.compose = compose_command()
        self.token = secrets.token_urlsafe(32)
        self.https_port, self.http_port = free_port(), free_port()
        self.prometheus_port = free_port()
        self.prometheus_url = f"http://127.0.0.1:{self.prometheus_port}"
        self.url = f"https://localhost:{self.https_port}"
        self.http_url = f"http://localhost:{self.http_port}"
        tls = work / "tls"
        self.certificate = self_signed_certificate(tls)
        self.env = {
            **os.environ,
            "PATH": buildkit_path(work / "bin"),
            # docker-compose 1.29 builds through the docker CLI, and so with BuildKit, only so.
            "COMPOSE_DOCKER_CLI_BUILD": "1",
            "DOCKER_BUILDKIT": "1",
            "COMPOSE_PROJECT_NAME": f"fashion-e2e-{uuid.uuid4().hex[:10]}",
            "FASHION_HTTPS_PORT": str(self.https_port),
            "FASHION_HTTP_PORT": str(self.http_port),
            "FASHION_PROMETHEUS_PORT": str(self.prometheus_port),
            "FASHION_TLS_DIR": str(tls),
            # A back network of its own: a deployment of the user's may hold the default one.
            "FASHION_BACK_SUBNET": f"172.30.{random.randrange(256)}.{8 * random.randrange(32)}/29",
            "FASHION_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
            "FASHION_ADMIN_TOKEN": self.token,
            "FASHION_BASE_IMAGE": base_image,
            "FASHION_PROXY_BASE_IMAGE": base_image,
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

    def logs(self, service: str) -> list[dict]:
        """The service's JSON log lines (others, such as gunicorn's start lines, skipped)."""
        entries = []
        for line in self(f"logs --no-color {service}", timeout=60).splitlines():
            _, _, text = line.partition("| ")
            if text.startswith("{"):
                entries.append(json.loads(text))
        return entries

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(f"{self.url}{path}", verify=self.certificate, timeout=30, **kwargs)

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
        response = requests.post(
            f"{self.url}/predict", files=files, verify=self.certificate, timeout=60
        )
        assert response.status_code == 200, response.text
        return response.json()

    def promote(self, version: int, token: str) -> requests.Response:
        """The README's promote call: PUT the production alias with a bearer token."""
        return requests.put(
            f"{self.url}/models/{MODEL}/aliases/production",
            json={"version": version},
            headers={"Authorization": f"Bearer {token}"},
            verify=self.certificate,
            timeout=30,
        )


def self_signed_certificate(folder: Path) -> Path:
    """cert.pem and key.pem for localhost in folder, as the proxy mounts them; the cert's path."""
    folder.mkdir()
    run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        dict(os.environ), timeout=60,
    )  # fmt: skip
    (folder / "key.pem").chmod(0o644)  # the proxy's own user reads it through the mount
    return folder / "cert.pem"


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
    base_image = prepare_engine()
    compose = Deployment(tmp_path_factory.mktemp("docker"), base_image)
    try:
        # The same commands as the README, in the same order.
        started = time.monotonic()
        compose("build")
        compose("--profile train build train")
        compose("--profile monitoring build prometheus")
        print(f"images built in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        compose("up -d")
        compose.wait_healthy(compose.container())
        print(f"compose up -d to healthy in {time.monotonic() - started:.1f} s")
        yield compose
    finally:
        compose("--profile monitoring down -v", timeout=300)


def test_compose_file_is_valid_with_every_profile() -> None:
    """The compose file parses; the token is read from the environment, not written in it."""
    prepare_engine()  # Compose itself
    env = {**os.environ, "FASHION_ADMIN_TOKEN": "from-the-environment"}
    config = run(
        [*compose_command(), *("--profile", "train", "--profile", "gpu"),
         *("--profile", "monitoring", "config")],
        env, timeout=120,
    )  # fmt: skip
    for service in ("proxy:", "api:", "train:", "api-gpu:", "prometheus:"):
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

    train = "--profile train run --rm train --arch mlp --epochs 1 --train-limit 5000"
    output = deployment(train, 900)
    registered = re.search(rf"registered {MODEL} version (\d+)", output)
    assert registered, output
    new_version = int(registered.group(1))
    assert new_version > shipped_version
    listed = deployment.get(f"/models/{MODEL}").json()
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


# Versions the serve image ships (the registry is copied in): each must show its hidden layers.
SHIPPED_VERSIONS = sorted(
    int(p.parent.name) for p in (REPO / "models" / MODEL).glob("*/model.onnx")
)


@pytest.mark.parametrize("version", SHIPPED_VERSIONS)
def test_the_serve_image_shows_inside_the_network_of_every_shipped_version(
    deployment: Deployment, version: int
) -> None:
    """The activations view from the lean image (no `onnx` package in it) for each version."""
    images, _ = real_test_images()
    response = requests.post(
        f"{deployment.url}/models/{MODEL}/activations?version={version}",
        files={"image": ("0.png", png(images[0]), "image/png")},
        verify=deployment.certificate,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["version"] == version
    assert body["layers"], body
    assert body["readout"]["label"] in CLASS_NAMES
    missing = run(
        [*deployment.compose, "exec", "-T", "api", "python", "-c",
         "import importlib.util as u; print([m for m in ('onnx', 'ml_dtypes') if u.find_spec(m)])"],
        deployment.env, timeout=60,
    )  # fmt: skip
    assert missing.strip().splitlines()[-1] == "[]"


def test_https_with_http2_and_http_redirected_to_it(deployment: Deployment) -> None:
    context = ssl.create_default_context(cafile=str(deployment.certificate))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", deployment.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    if shutil.which("curl"):  # a whole request over HTTP/2
        version = run(
            ["curl", "--http2", "--silent", "--cacert", str(deployment.certificate),
             "--output", "/dev/null", "--write-out", "%{http_version} %{http_code}",
             f"{deployment.url}/readyz"],
            deployment.env, timeout=60,
        )  # fmt: skip
        assert version.split()[-2:] == ["2", "200"]
    for method in ("GET", "POST"):
        redirect = requests.request(
            method, f"{deployment.http_url}/predict?x=1", allow_redirects=False, timeout=30
        )
        assert redirect.status_code == 308  # the method and body are kept
        assert redirect.headers["Location"] == f"{deployment.url}/predict?x=1"
    assert deployment.get("/readyz").headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/predict", {"code": "payload_too_large"}),
        ("/v2/models/fashion-mnist/infer", None),  # the protocol's own {"error": "..."}
    ],
)
def test_the_proxy_refuses_bodies_at_the_api_s_own_limit(
    deployment: Deployment, path: str, error: dict | None
) -> None:
    """FASHION_MAX_UPLOAD_BYTES reaches both: a body at the limit passes, one byte more is 413."""
    answers = {}
    for size in (UPLOAD_LIMIT, UPLOAD_LIMIT + 1):
        response = requests.post(
            f"{deployment.url}{path}",
            data=b"x" * size,
            headers={"Content-Type": "application/octet-stream"},
            verify=deployment.certificate,
            timeout=60,
        )
        answers[size] = response
    assert answers[UPLOAD_LIMIT].status_code in (400, 415, 422), answers[UPLOAD_LIMIT].text
    too_large = answers[UPLOAD_LIMIT + 1]
    assert too_large.status_code == 413
    body = too_large.json()
    if error is None:
        assert isinstance(body["error"], str)
    else:
        assert body["error"]["code"] == error["code"]
    # Inside the network the api itself holds the same line (it is the proxy that answered).
    direct = run(
        [*deployment.compose, "exec", "-T", "api", "python", "-c",
         "import urllib.request as u, urllib.error as e\n"
         f"r = u.Request('http://127.0.0.1:8000{path}', data=b'x' * {UPLOAD_LIMIT + 1},"
         " headers={'Content-Type': 'application/octet-stream'})\n"
         "try: u.urlopen(r)\nexcept e.HTTPError as x: print(x.code)"],
        deployment.env, timeout=60,
    )  # fmt: skip
    assert direct.strip().splitlines()[-1] == "413"


def test_request_ids_and_the_client_address_are_kept_end_to_end(deployment: Deployment) -> None:
    given = f"e2e-{uuid.uuid4().hex}"
    spoofed = "203.0.113.9"
    response = deployment.get(
        "/readyz", headers={"X-Request-ID": given, "X-Forwarded-For": spoofed}
    )
    assert response.headers["X-Request-ID"] == given
    generated = deployment.get("/healthz").headers["X-Request-ID"]
    assert generated
    deadline = time.monotonic() + 30
    while True:  # docker's log driver may lag behind the answer a little
        proxy = {e.get("request_id"): e for e in deployment.logs("proxy")}
        api = {e.get("request_id"): e for e in deployment.logs("api")}
        if all(i in proxy and i in api for i in (given, generated)):
            break
        assert time.monotonic() < deadline, (proxy.keys(), api.keys())
        time.sleep(0.5)
    assert proxy[given]["uri"] == "/readyz"
    # The api names the client the proxy saw, never what the client wrote in X-Forwarded-For.
    assert api[given]["remote"] == proxy[given]["remote"] != spoofed
    # From inside the network, not through the proxy: the header is not believed.
    direct_id = f"direct-{uuid.uuid4().hex}"
    run(
        [*deployment.compose, "exec", "-T", "api", "python", "-c",
         "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8000/healthz',"
         f" headers={{'X-Forwarded-For': '{spoofed}', 'X-Request-ID': '{direct_id}'}}))"],
        deployment.env, timeout=60,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while direct_id not in (api := {e.get("request_id"): e for e in deployment.logs("api")}):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert api[direct_id]["remote"] == "127.0.0.1"


def test_a_restarted_api_is_ready_behind_the_proxy(deployment: Deployment) -> None:
    """Prints how long a started api container takes to answer /readyz through the proxy.

    Counted from the container's start (Docker's StartedAt), not from the CLI's call, whose own
    overhead is seconds with docker-compose 1.29; bench/README.md has the figures.
    """
    deployment("stop api", timeout=120)
    deployment("start api", timeout=120)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            if deployment.get("/readyz").status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, deployment("logs api")
        time.sleep(0.02)
    ready = datetime.datetime.now(datetime.UTC)
    started = deployment.inspect(deployment.container(), "{{.State.StartedAt}}")
    # RFC 3339 with nanoseconds: microseconds are what datetime reads.
    started_at = datetime.datetime.fromisoformat(started[:26] + "+00:00")
    took = (ready - started_at).total_seconds()
    print(f"api container start → ready through the proxy: {took:.2f} s")


def prometheus_query(deployment: Deployment, query: str) -> list[dict]:
    """The result vector of an instant query through Prometheus's HTTP API."""
    response = requests.get(
        f"{deployment.prometheus_url}/api/v1/query", params={"query": query}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["result"]


def test_the_monitoring_profile_scrapes_the_api_and_records_the_rollout_signals(
    deployment: Deployment,
) -> None:
    """The README's `--profile monitoring up -d`: Prometheus finds the api up and the recorded
    version share (a canary's signal) has a value: all of it for the version answering now."""
    deployment("--profile monitoring up -d", timeout=600)
    bindings = deployment.inspect(
        deployment.container("prometheus"), "{{json .HostConfig.PortBindings}}"
    )
    assert {b["HostIp"] for b in json.loads(bindings)["9090/tcp"]} == {"127.0.0.1"}
    images, _ = real_test_images()
    deadline = time.monotonic() + PROMETHEUS_TIMEOUT
    targets: list[dict] = []
    while not any(t["health"] == "up" for t in targets):
        assert time.monotonic() < deadline, targets or deployment("logs prometheus")
        try:
            answer = requests.get(f"{deployment.prometheus_url}/api/v1/targets", timeout=10)
            targets = answer.json()["data"]["activeTargets"]
        except requests.RequestException:
            pass  # not listening yet
        time.sleep(1)
    (target,) = targets
    assert target["labels"]["job"] == "fashion-serve"
    assert target["scrapeUrl"] == "http://api:8000/metrics"
    shares: list[dict] = []
    while not shares:  # rate() needs two scrapes of a counter that moved in between
        assert time.monotonic() < deadline, "no value for fashion:version_images:share_5m"
        version = deployment.predict(images[:4])["model"]["version"]
        time.sleep(1)
        shares = prometheus_query(deployment, "fashion:version_images:share_5m")
    by_version = {int(s["metric"]["version"]): float(s["value"][1]) for s in shares}
    assert by_version[version] == pytest.approx(1.0)
    assert prometheus_query(deployment, 'up{job="fashion-serve"}')[0]["value"][1] == "1"
