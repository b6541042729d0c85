"""The real service under gunicorn over real HTTP: accuracy, hot reload under load, refusals."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from service.registry import Registry
from service.runtime import CPU, OnnxModel
from tests.conftest import MODEL
from tests.e2e.server import REPO, GunicornServer
from tests.images import dark_images, png
from tests.shipped import copy_shipped
from tests.tiny_models import force_alias, register_tiny
from tests.waiting import wait_for
from training.data import DEFAULT_DIR, load

pytestmark = pytest.mark.slow
# "A few seconds": the 0.2 s reload interval plus loading and warming a version takes
# ~0.12 s on a quiet two-core machine; the rest is room for a busy one.
SWITCH_TIMEOUT = 5
SETTLED = 8  # answers in a row from the new version


@pytest.fixture(scope="module")
def test_set():
    data = load(DEFAULT_DIR)
    return data.test_images[:1000], data.test_labels[:1000]


def test_real_images_as_png_score_exactly_like_the_onnx_model(tmp_path, test_set):
    images, labels = test_set
    copy_shipped(tmp_path / "models")
    registry = Registry(tmp_path / "models")
    version = registry.resolve(MODEL)
    reference = OnnxModel(registry.model_path(MODEL, version).read_bytes(), [CPU])
    expected = reference.run(images.astype(np.float32) / 255)
    with (
        GunicornServer(tmp_path / "models", tmp_path / "log") as server,
        requests.Session() as http,
    ):
        got = []
        for pixels in images:
            response = http.post(f"{server.url}/predict", files={"image": png(pixels)})
            assert response.status_code == 200, response.text
            got.append(list(response.json()["predictions"][0]["probabilities"].values()))
    got = np.array(got, dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    served_accuracy = float((got.argmax(1) == labels).mean())
    assert served_accuracy == float((expected.argmax(1) == labels).mean())
    assert served_accuracy > 0.8


def test_alias_moved_under_load_fails_no_request_and_every_worker_switches(registry, tmp_path):
    image = png(dark_images(1)[0])
    versions, failures, stop = [], [], threading.Event()

    def client(url: str) -> None:
        # A new connection per request: whichever worker accepts it answers, so the load reaches
        # both (one Session would keep its one connection, and so its one worker).
        while not stop.is_set():
            try:
                response = requests.post(f"{url}/predict", files={"image": image}, timeout=60)
            except requests.RequestException as error:
                failures.append(repr(error))
                continue
            if response.status_code != 200:
                failures.append(response.status_code)
            else:
                versions.append((time.monotonic(), response.json()["model"]["version"]))

    seen: dict[int, int] = {}
    with GunicornServer(registry.root, tmp_path / "log", workers=2) as server:
        worker = threading.Thread(target=client, args=(server.url,))
        worker.start()
        wait_for(lambda: len(server.worker_versions(seen)) == 2, "both workers to answer")
        assert set(seen.values()) == {1}
        wait_for(lambda: len(versions) >= SETTLED, "answers under load")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "service.registry",
                "--root",
                str(registry.root),
                "promote",
                MODEL,
                "2",
                "--alias",
                "production",
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        moved_at = time.monotonic()  # the alias file has moved once the command returns
        wait_for(
            lambda: set(server.worker_versions(seen).values()) == {2},
            "both workers to serve version 2",
        )
        wait_for(lambda: [v for _, v in versions[-SETTLED:]] == [2] * SETTLED, "settled load")
        stop.set()
        worker.join()
    assert len(seen) == 2  # the same two workers throughout: none restarted
    assert failures == []
    assert versions[0][1] == 1
    last_old = max(t for t, v in versions if v == 1)
    assert last_old - moved_at < SWITCH_TIMEOUT


def readyz_with_refusals(url: str) -> dict | None:
    """The /readyz body once it lists a refusal, else None."""
    status = requests.get(f"{url}/readyz", timeout=10).json()
    return status if status["refused"] else None


def test_corrupted_version_is_refused_while_the_old_one_keeps_serving(registry, tmp_path):
    version = register_tiny(registry, MODEL, 9, tmp_path)
    model_file = registry.model_path(MODEL, version)
    model_file.write_bytes(b"\0" + model_file.read_bytes()[1:])
    image = png(dark_images(1)[0])
    with GunicornServer(registry.root, tmp_path / "log", workers=1) as server:
        force_alias(registry, MODEL, "production", version)  # the registry itself refuses it
        ready = wait_for(lambda: readyz_with_refusals(server.url), "the refusal", timeout=10)
        assert ready["ready"] is True
        assert ready["refused"][0]["version"] == version
        response = requests.post(f"{server.url}/predict", files={"image": image}, timeout=10)
        assert response.status_code == 200
        assert response.json()["model"]["version"] == 1
    assert "sha256" in server.log()


def test_bad_requests_over_real_http_never_500_and_the_service_keeps_serving(registry, tmp_path):
    good = png(dark_images(1)[0])
    bomb = _png_declaring(50000, 50000)
    with GunicornServer(
        registry.root, tmp_path / "log", workers=1, FASHION_MAX_UPLOAD_BYTES="65536"
    ) as server:
        url = f"{server.url}/predict"

        def post(**kwargs):
            return requests.post(url, timeout=30, **kwargs)

        cases = [
            (post(files={"image": b"%PDF-1.4 not an image"}), 415),
            (post(files={"image": good[:40]}), 422),
            (post(data=bomb, headers={"Content-Type": "image/png"}), 413),
            (post(data=b"x" * 200_000, headers={"Content-Type": "image/png"}), 413),
            (post(files={"file": good}), 400),
            (post(data=b"<html></html>", headers={"Content-Type": "text/html"}), 415),
        ]
        for response, status in cases:
            assert response.status_code == status, response.text
            assert response.json()["error"]["message"]
        assert post(files={"image": good}).status_code == 200
    assert "Traceback" not in server.log()


def test_sigterm_stops_every_worker_cleanly(registry, tmp_path):
    """Workers once aborted on exit: onnxruntime, imported by the master, does not survive fork."""
    server = GunicornServer(registry.root, tmp_path / "log").start()
    assert requests.post(
        f"{server.url}/predict", files={"image": png(dark_images(1)[0])}, timeout=30
    ).ok
    server.stop()

    assert server.process.returncode == 0, server.log()
    assert "Shutting down: Master" in server.log()
    for crash in ("SIGABRT", "terminate called", "Traceback"):
        assert crash not in server.log()


def test_cuda_requested_without_cuda_stops_the_start_with_a_clear_message(registry, tmp_path):
    server = GunicornServer(registry.root, tmp_path / "log", FASHION_DEVICE="cuda")
    with pytest.raises(RuntimeError, match="cannot start: FASHION_DEVICE=cuda but onnxruntime"):
        server.start()
    assert server.process.returncode != 0


def _png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes of valid PNG that claims width × height pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
