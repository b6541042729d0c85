"""A 10 % canary under real gunicorn (two workers) over a copy of the shipped registry."""

import collections
import json
import uuid
from pathlib import Path

import pytest
import requests

from service.canary import bucket
from service.registry import Registry
from tests.e2e.server import GunicornServer
from tests.images import dark_images, png
from tests.shipped import copy_shipped
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
MODEL = "fashion-mnist"
TOKEN = "canary-token"
REQUESTS = 1500


def test_a_ten_percent_canary_serves_ten_percent_and_keys_stick(tmp_path):
    root = tmp_path / "models"
    copy_shipped(root)
    image = png(dark_images(1)[0])
    with GunicornServer(root, tmp_path / "gunicorn.log", FASHION_ADMIN_TOKEN=TOKEN) as server, \
            requests.Session() as http:  # fmt: skip
        moved = http.put(
            f"{server.url}/models/{MODEL}/aliases/production/canary",
            json={"version": 1, "weight": 10},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
        assert moved.status_code == 200, moved.text

        def served(key: str) -> tuple[int, str]:
            response = http.post(
                f"{server.url}/predict",
                files={"image": image},
                headers={"X-Request-Key": key},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            version = response.json()["model"]["version"]
            assert response.headers["X-Model-Version"] == f"{MODEL}:{version}"
            return version, response.headers["X-Request-ID"]

        # Keys the canary takes (the same hash the service uses): once 30 answers in a row come
        # from the candidate, both workers follow canaries.json.
        canary_keys = [k for k in (f"probe-{i}" for i in range(400))
                       if bucket(MODEL, "production", k) < 1000][:30]  # fmt: skip
        wait_for(
            lambda: all(served(key)[0] == 1 for key in canary_keys), "both workers' canary", 60
        )
        keys = [uuid.uuid4().hex for _ in range(REQUESTS)]
        answers = [served(key) for key in keys]
        counts = collections.Counter(version for version, _ in answers)
        assert set(counts) == {1, Registry(root).aliases(MODEL)["production"]}
        assert 8.0 <= counts[1] / REQUESTS * 100 <= 12.0, counts
        for key, (version, _) in list(zip(keys, answers, strict=True))[:100]:
            assert served(key)[0] == version
        metrics = http.get(f"{server.url}/metrics", timeout=30).text
        assert f'fashion_version_images_classified_total{{model="{MODEL}",version="1"}}' in metrics
    logged = {}
    for line in server.log().splitlines():
        if line.startswith("{") and '"path":"/predict"' in line:
            entry = json.loads(line)
            logged[entry["request_id"]] = entry["model"]
    for version, request_id in answers[:200]:  # the access log names the answering version
        assert logged[request_id] == f"{MODEL}:{version}"
