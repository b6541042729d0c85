"""Rollouts that step and stop themselves, under real gunicorn (two workers), over a copy of the
shipped registry, with the real test set replayed as traffic and its labels as feedback."""

from pathlib import Path

import pytest
import requests

from service.registry import Registry
from service.rollout import COMPLETED, ROLLED_BACK, Margins, Rollout
from tests.e2e.server import GunicornServer
from tests.images import png
from tests.replay import first_test_items
from tests.shipped import copy_shipped
from tests.tiny_models import register_tiny

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
MODEL = "fashion-mnist"
ITEMS, CHUNK = 3000, 500
STEPS = [10, 50, 100]
DEFAULTS = Margins()  # the CLI's
INTERVAL = 1.0  # seconds: each chunk of traffic takes longer, so every check may step


@pytest.fixture
def registry(tmp_path) -> Registry:
    copy_shipped(tmp_path / "models")
    return Registry(tmp_path / "models")


def replay(server: GunicornServer, http: requests.Session, images, labels, start: int,
           pairs: bool = False) -> None:  # fmt: skip
    """Each test item as one client (its own key), then that client's feedback.

    pairs: each client sends its item and the next one in one request; a version that fails
    answers 503, and that client sends no feedback.
    """
    for i, (image, label) in enumerate(zip(images, labels.tolist(), strict=True), start):
        files = [("image", png(image))] + ([("image", png(images[0]))] if pairs else [])
        answer = http.post(f"{server.url}/predict", files=files,
                           headers={"X-Request-Key": f"client-{i}"}, timeout=30)  # fmt: skip
        if pairs and answer.status_code == 503:
            continue
        assert answer.status_code == 200, answer.text
        feedback = {"request_id": answer.headers["X-Request-ID"], "label": label}
        assert http.post(f"{server.url}/feedback", json=feedback, timeout=30).status_code == 200


def roll(registry: Registry, tmp_path: Path, candidate: int, margins: Margins = DEFAULTS,
         items: int = ITEMS, pairs: bool = False) -> tuple[dict, list[int]]:  # fmt: skip
    """Start a rollout of candidate, replay traffic chunk by chunk, step after each chunk."""
    images, labels = first_test_items(items)
    rollout = Rollout(registry)
    state = rollout.start(MODEL, candidate, "production", STEPS, INTERVAL, margins)
    weights = [STEPS[state["step"]]]
    # One replaying client sends all the feedback: above the per-client limit meant for people.
    env = {"FASHION_FEEDBACK_RATE": "100000"}
    with GunicornServer(registry.root, tmp_path / "gunicorn.log", **env) as server, \
            requests.Session() as http:  # fmt: skip
        for start in range(0, items, CHUNK):
            chunk = slice(start, start + CHUNK)
            replay(server, http, images[chunk], labels[chunk], start, pairs)
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
    logged = len(registry.alias_log(MODEL))  # the shipped registry's own moves come first
    state, weights = roll(registry, tmp_path, candidate=1)  # the MLP: about 4 points worse
    assert state["status"] == ROLLED_BACK, state
    assert "feedback accuracy" in state["reason"]
    assert 100 not in weights
    assert registry.aliases(MODEL)["production"] == incumbent
    assert registry.canaries(MODEL) == {}
    actions = [entry["action"] for entry in registry.alias_log(MODEL)[logged:]]
    assert actions[:3] == ["canary", "shadow", "rollout_start"]
    assert actions[-3:] == ["canary_end", "shadow_end", "rollout_rollback"]
    assert registry.alias_log(MODEL)[-1]["reason"] == state["reason"]
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


def test_a_candidate_that_disagrees_with_the_incumbent_rolls_back(registry, tmp_path):
    """The MLP, shadowing the alias, answers about 9 % of the test set otherwise than the CNN
    in production: above a 6 % margin (accuracy's margin out of the way)."""
    margins = Margins(accuracy=1.0, disagreement=0.06)
    state, weights = roll(registry, tmp_path, candidate=1, margins=margins, items=1000)
    assert state["status"] == ROLLED_BACK, state
    assert state["reason"].startswith("disagreement"), state["reason"]
    assert weights == [10]
    evidence = state["evidence"]["1"]
    assert evidence["compared"] >= margins.min_compared
    assert 0.06 < evidence["disagreement"] < 0.15
    assert registry.shadows(MODEL) == {}


def test_a_candidate_that_fails_requests_rolls_back(registry, tmp_path):
    """A real graph that runs one image but not two: its share of two-image requests fail."""
    broken = register_tiny(registry, MODEL, 7, tmp_path, rows=1)
    state, weights = roll(registry, tmp_path, broken, Margins(min_requests=20), items=1000,
                          pairs=True)  # fmt: skip
    assert state["status"] == ROLLED_BACK, state
    assert state["reason"].startswith("error rate"), state["reason"]
    assert weights == [10]
    incumbent = str(registry.aliases(MODEL)["production"])
    assert state["evidence"][incumbent]["errors"] == 0
    assert state["evidence"][str(broken)]["error_rate"] == 1.0
