"""Two independent services over one registry folder: a promote through one reaches the other.

This is the property every multi-replica deployment (Swarm replicas, Kubernetes pods over a
ReadWriteMany volume) relies on: the registry folder is the only shared state, and each service
follows its aliases on its own, within its reload interval, with no message between services.
"""

import time

import pytest
import requests

from tests.conftest import MODEL
from tests.e2e.server import GunicornServer
from tests.images import dark_images, png
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
TOKEN = "two-services-token"
RELOAD_INTERVAL = 1.0  # the service's default: what a deployment gets without tuning
# Loading and warming a tiny version takes ~0.1 s; the rest is room for a busy two-core machine,
# and for the kernel to hand one of the new connections to each worker (2 s once fell short).
LOAD_SLACK = 10.0


def test_a_promote_through_one_service_is_followed_by_the_other(registry, tmp_path):
    image = png(dark_images(1)[0])
    admin = GunicornServer(
        registry.root,
        tmp_path / "admin.log",
        FASHION_ADMIN_TOKEN=TOKEN,
        FASHION_RELOAD_INTERVAL=str(RELOAD_INTERVAL),
    )
    # The follower has no token: it is read-only, and still follows what the admin moves.
    follower = GunicornServer(
        registry.root,
        tmp_path / "follower.log",
        FASHION_ADMIN_TOKEN="",
        FASHION_RELOAD_INTERVAL=str(RELOAD_INTERVAL),
    )
    with admin, follower, requests.Session() as http:

        def version(server: GunicornServer) -> int:
            response = http.post(f"{server.url}/predict", files={"image": image}, timeout=30)
            assert response.status_code == 200, response.text
            return response.json()["model"]["version"]

        assert version(admin) == version(follower) == 1
        workers: dict[int, int] = {}
        wait_for(lambda: len(follower.worker_versions(workers)) == 2, "both follower workers")
        refused = http.put(
            f"{follower.url}/models/{MODEL}/aliases/production",
            json={"version": 2},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert refused.status_code == 403

        promoted = http.put(
            f"{admin.url}/models/{MODEL}/aliases/production",
            json={"version": 2},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert promoted.status_code == 200, promoted.text
        moved_at = time.monotonic()

        # Every worker of the follower, each asked on a new connection, reports the new version.
        wait_for(
            lambda: set(follower.worker_versions(workers).values()) == {2},
            "every follower worker to serve version 2",
            timeout=RELOAD_INTERVAL + LOAD_SLACK,
        )
        assert len(workers) == 2  # the same two workers: none restarted
        assert version(follower) == 2
        print(f"follower settled on version 2 {time.monotonic() - moved_at:.2f} s after the move")
        assert version(admin) == 2
    assert "Traceback" not in follower.log()
