"""Payload capture under real gunicorn (two workers) over a copy of the shipped registry: a burst
stays within the cap, each worker writes files of its own, and captures made before a restart
are joined with feedback given after it."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from service.capture import folder, records, segments
from tests.e2e.server import GunicornServer
from tests.images import png
from tests.replay import first_test_items
from tests.shipped import copy_shipped
from training import captured

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
MODEL = "fashion-mnist"
CAP = 65536  # the smallest FASHION_CAPTURE_MAX_BYTES: 4 KiB segments
BURST = 300  # single-image requests, ~1.3 kB captured each: six times the cap
CLIENTS = 4
LABELLED = 10  # requests of the burst's end given feedback after a restart


def test_a_burst_across_workers_stays_capped_and_survives_a_restart(tmp_path):
    root = tmp_path / "models"
    copy_shipped(root)
    images, labels = first_test_items(BURST)
    env = {"FASHION_CAPTURE_RATE": "1", "FASHION_CAPTURE_MAX_BYTES": str(CAP)}

    def predict(image: np.ndarray) -> str:
        # A new connection each time: the kernel spreads them over both workers.
        response = requests.post(f"{server.url}/predict", files={"image": png(image)}, timeout=30)
        assert response.status_code == 200, response.text
        return response.headers["X-Request-ID"]

    with (
        GunicornServer(root, tmp_path / "first.log", **env) as server,
        ThreadPoolExecutor(CLIENTS) as pool,
    ):
        request_ids = list(pool.map(predict, images))
    where = folder(root)
    files = segments(where)
    writers = {path.name.split("-")[-2] for path in files}
    assert len(writers) == 2, files  # both workers captured, each into files of its own
    segment = CAP // 16
    assert sum(path.stat().st_size for path in files) <= CAP + (len(writers) - 1) * segment
    kept = {r["id"] for r in records(where)}
    assert request_ids[-1] in kept  # the newest are the ones kept
    assert request_ids[0] not in kept

    with GunicornServer(root, tmp_path / "second.log", **env) as server:
        for request_id, label in zip(request_ids[-LABELLED:], labels[-LABELLED:], strict=True):
            given = requests.post(
                f"{server.url}/feedback",
                json={"request_id": request_id, "label": int(label)},
                timeout=30,
            )
            assert given.status_code == 200, given.text
    found = captured.load(root, MODEL)
    assert len(found.labels) == LABELLED
    assert sorted(found.labels.tolist()) == sorted(labels[-LABELLED:].tolist())
    for picture in found.images:  # each exactly one of the pictures sent
        assert any(np.array_equal(picture, image) for image in images[-LABELLED:])
