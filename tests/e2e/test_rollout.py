"""Rollouts that step and stop themselves, under real gunicorn (two workers), over a copy of the
shipped registry, with the real test set replayed as traffic and its labels as feedback."""

import shutil
from pathlib import Path

import pytest
import requests

from service.registry import Registry
from service.rollout import COMPLETED, ROLLED_BACK, Margins, Rollout
from tests.e2e.server import GunicornServer
from tests.images import png
from tests.replay import first_test_items

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
MODEL = "fashion-mnist"
ITEMS, CHUNK = 3000, 500
STEPS = [10, 50, 100]
INTERVAL = 1.0  # seconds: each chunk of traffic takes longer, so every check may step


@pytest.fixture
def registry(tmp_path) -> Registry:
    shutil.copytree(REPO / "models", tmp_path / "models")
    return Registry(tmp_path / "models")


def replay(server: GunicornServer, http: requests.Session, images, labels, start: int) -> None:
    """Each test item as one client (its own key), then that client's feedback."""
    for i, (image, label) in enumerate(zip(images, labels.tolist(), strict=True), start):
        answer = http.post(f"{server.url}/predict", files={"image": png(image)},
                           headers={"X-Request-Key": f"client-{i}"}, timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text
        feedback = {"request_id": answer.headers["X-Request-ID"], "label": label}
        assert http.post(f"{server.url}/feedback", json=feedback, timeout=30).status_code == 200


def roll(registry: Registry, tmp_path: Path, candidate: int) -> tuple[dict, list[int]]:
    """Start a rollout of candidate, replay traffic chunk by chunk, step after each chunk."""
    images, labels = first_test_items(ITEMS)
    rollout = Rollout(registry)
    state = rollout.start(MODEL, candidate, "production", STEPS, INTERVAL, Margins())
    weights = [STEPS[state["step"]]]
    # One replaying client sends all the feedback: above the per-client limit meant for people.
    env = {"FASHION_FEEDBACK_RATE": "100000"}
    with GunicornServer(registry.root, tmp_path / "gunicorn.log", **env) as server, \
            requests.Session() as http:  # fmt: skip
        for start in range(0, ITEMS, CHUNK):
            replay(
                server, http, images[start : start + CHUNK], labels[start : start + CHUNK], start
            )
            state = rollout.step(MODEL)
            if state["status"] == ROLLED_BACK:
                break
            if STEPS[state["step"]] != weights[-1]:
                weights.append(STEPS[state["step"]])
            if state["status"] == COMPLETED:
                break
    return state, weights


def test_a_worse_candidate_rolls_itself_back_before_its_last_step(registry, tmp_path):
    incumbent = registry.aliases(MODEL)["production"]  # the shipped CNN
    state, weights = roll(registry, tmp_path, candidate=1)  # the MLP: about 4 points worse
    assert state["status"] == ROLLED_BACK, state
    assert "feedback accuracy" in state["reason"]
    assert 100 not in weights
    assert registry.aliases(MODEL)["production"] == incumbent
    assert registry.canaries(MODEL) == {}
    actions = [entry["action"] for entry in registry.alias_log(MODEL)]
    assert actions[:2] == ["canary", "rollout_start"]
    assert actions[-2:] == ["canary_end", "rollout_rollback"]
    assert registry.rollout(MODEL)["status"] == ROLLED_BACK  # the state outlives the process


def test_a_better_candidate_completes(registry, tmp_path):
    better = registry.aliases(MODEL)["production"]
    registry.set_alias(MODEL, "production", 1)
    state, weights = roll(registry, tmp_path, candidate=better)
    assert state["status"] == COMPLETED, state
    assert weights == STEPS
    assert registry.aliases(MODEL)["production"] == better
    assert registry.canaries(MODEL) == {}
    evidence = state["evidence"]
    assert evidence[str(better)]["accuracy"] > evidence["1"]["accuracy"]
