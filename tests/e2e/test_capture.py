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
from tests.waiting import wait_for
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
    where = folder(root)

    def predict(index: int) -> tuple[str, int]:
        # A new connection each time, so over requests the kernel hands some to each worker.
        image = png(images[index])
        response = requests.post(f"{server.url}/predict", files={"image": image}, timeout=30)
        assert response.status_code == 200, response.text
        return response.headers["X-Request-ID"], index

    def writers() -> set[str]:
        return {path.name.split("-")[-2] for path in segments(where)}

    def both_captured() -> bool:
        sent.append(predict(len(sent) % BURST))
        return len(writers()) == 2

    with (
        GunicornServer(root, tmp_path / "first.log", **env) as server,
        ThreadPoolExecutor(CLIENTS) as pool,
    ):
        sent = list(pool.map(predict, range(BURST)))
        # Both workers are up, yet nothing obliges the kernel to hand the burst to both: go on, a
        # request at a time, until each has captured, into files of its own.
        wait_for(both_captured, "both workers to capture", timeout=120)
    request_ids = [request_id for request_id, _ in sent]
    files = segments(where)
    segment = CAP // 16
    assert sum(path.stat().st_size for path in files) <= CAP + (len(writers()) - 1) * segment
    kept = {r["id"] for r in records(where)}
    assert request_ids[-1] in kept  # the newest are the ones kept
    assert request_ids[0] not in kept

    labelled = [index for _, index in sent[-LABELLED:]]
    with GunicornServer(root, tmp_path / "second.log", **env) as server:
        for request_id, index in sent[-LABELLED:]:
            given = requests.post(
                f"{server.url}/feedback",
                json={"request_id": request_id, "label": int(labels[index])},
                timeout=30,
            )
            assert given.status_code == 200, given.text
    found = captured.load(root, MODEL)
    assert len(found.labels) == LABELLED
    assert sorted(found.labels.tolist()) == sorted(labels[labelled].tolist())
    for picture in found.images:  # each exactly one of the pictures sent
        assert any(np.array_equal(picture, images[index]) for index in labelled)
