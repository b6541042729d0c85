"""Canary routing with real tiny models: the candidate's share, and sticky client keys."""

import pytest

from service.canary import BUCKETS, bucket
from tests.conftest import MODEL
from tests.images import dark_images, png
from tests.waiting import wait_for

REQUESTS = 2000


def test_a_key_always_falls_in_the_same_bucket():
    assert bucket(MODEL, "production", "user-1") == bucket(MODEL, "production", "user-1")
    buckets = {bucket(MODEL, "production", f"user-{i}") for i in range(200)}
    assert len(buckets) > 150
    assert all(0 <= b < BUCKETS for b in buckets)


@pytest.mark.parametrize("weight", [10, 50])
def test_the_candidate_answers_its_share_and_keys_stick(service, registry, weight):
    service.registry_view.set_canary(MODEL, "production", 2, weight)
    plane = service.data_plane
    image = [png(dark_images(1)[0])]

    def version(key: str | None) -> int:
        return plane.predict_images(image, alias="production", key=key).model.version

    keyed = [version(f"client-{i}") for i in range(REQUESTS)]
    share = keyed.count(2) / REQUESTS * 100
    assert weight - 2 <= share <= weight + 2, share
    unkeyed = [version(None) for _ in range(REQUESTS)]
    assert weight - 3 <= unkeyed.count(2) / REQUESTS * 100 <= weight + 3
    for i in range(0, REQUESTS, 97):  # the same key, asked again, gets the same version
        assert {version(f"client-{i}") for _ in range(5)} == {keyed[i]}


def test_a_step_up_only_moves_keys_to_the_candidate(service):
    view, plane = service.registry_view, service.data_plane
    keys = [f"k{i}" for i in range(500)]
    view.set_canary(MODEL, "production", 2, 10)
    at_10 = {k for k in keys if plane.model(MODEL, alias="production", key=k)[0].version == 2}
    view.set_canary(MODEL, "production", 2, 50)
    at_50 = {k for k in keys if plane.model(MODEL, alias="production", key=k)[0].version == 2}
    assert at_10 < at_50


def test_a_canary_written_by_another_process_is_followed(service, registry):
    """The registry is the only shared state: a canary set on disk reaches a running core."""
    registry.set_canary(MODEL, "production", 2, 99)
    plane = service.data_plane
    wait_for(
        lambda: any(
            plane.model(alias="production", key=f"k{i}")[0].version == 2 for i in range(50)
        ),
        "the poller to serve the canary",
    )
    registry.clear_canary(MODEL, "production", "test")
    wait_for(
        lambda: all(
            plane.model(alias="production", key=f"k{i}")[0].version == 1 for i in range(50)
        ),
        "the poller to end the canary",
    )
