"""evaluation.gate: real tiny models in a real registry, on the real test set and photo set."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import real_pictures
from evaluation.gate import (
    ALPHA,
    CARD_KEY,
    GATED,
    RULE,
    GateRefused,
    gated_promote,
    load_benchmark,
)
from service.contract import CLASS_NAMES
from service.preprocess import normalize
from service.registry import Registry
from tests.tiny_models import (
    fitted_model_bytes,
    tiny_card,
    tiny_model_bytes,
    with_bias_shift,
    with_novelty,
)
from training import data

ROOT = Path(__file__).resolve().parents[2]
REAL_FIXTURE = Path(__file__).parent / "fixtures" / "real_pictures"
NAME = "fashion-mnist"
PHOTOS = 22  # two of each kind of rendering: enough to exercise the set, quick to render

pytestmark = pytest.mark.skipif(
    not data.DEFAULT_DIR.is_dir(),
    reason=f"needs Debian's dataset-fashion-mnist in {data.DEFAULT_DIR}",
)


@pytest.fixture(scope="module")
def benchmark():
    return load_benchmark(photo_count=PHOTOS)


@pytest.fixture(scope="module")
def real_benchmark(tmp_path_factory):
    """The benchmark with the real-picture fixture (two drawn pictures) rendered and read."""
    if shutil.which(real_pictures.RENDERER) is None:
        pytest.skip("needs rsvg-convert (librsvg2-bin)")
    cache = tmp_path_factory.mktemp("real-pictures")
    shutil.copytree(REAL_FIXTURE / "packages", cache / "packages")
    labels = REAL_FIXTURE / "labels.csv"
    real_pictures.render_all(cache, real_pictures.read_labels(labels))
    return load_benchmark(
        photo_count=PHOTOS, real_pictures_dir=str(cache), real_pictures_labels=labels
    )


@pytest.fixture(scope="module")
def good_model() -> bytes:
    """A linear classifier fitted on 10,000 training images: far better than random weights."""
    dataset = data.load(data.DEFAULT_DIR)
    return fitted_model_bytes(normalize(dataset.train_images[:10000]), dataset.train_labels[:10000])


def registry_with(tmp_path: Path, *models: bytes) -> Registry:
    """A registry holding the models as versions 1, 2, ... of NAME."""
    root = tmp_path / "models"
    root.mkdir()
    registry = Registry(root)
    for number, model in enumerate(models, start=1):
        path = tmp_path / f"model-{number}.onnx"
        path.write_bytes(model)
        registry.register(NAME, path, tiny_card(number))
    return registry


def test_a_better_candidate_is_promoted_and_the_card_records_why(
    tmp_path, benchmark, good_model, capsys
):
    registry = registry_with(tmp_path, tiny_model_bytes(1), good_model)
    registry.set_alias(NAME, "production", 1)

    comparison = gated_promote(registry, NAME, 2, "production", lambda: benchmark)

    assert registry.aliases(NAME) == {"production": 2}
    new, old = comparison.scores[2], comparison.scores[1]
    assert new["test_accuracy"] > 0.7 > old["test_accuracy"]
    assert new["photo_accuracy"] > old["photo_accuracy"]
    table = capsys.readouterr().out
    assert "candidate v2" in table
    assert "production v1" in table
    test = comparison.paired["test_accuracy"]
    (row,) = [line for line in table.splitlines() if line.startswith("test set ")]
    assert row.split()[-6:-1] == [
        f"{new['test_accuracy']:.4f}", f"{old['test_accuracy']:.4f}",
        f"{test.difference:+.4f}", str(test.b), str(test.c),
    ]  # fmt: skip
    assert row.endswith(f"{test.p:.3g}")
    assert "one-sided exact McNemar" in table
    (entry,) = registry.card(NAME, 2)[CARD_KEY]
    assert entry["verdict"] == "promoted"
    assert entry["against_version"] == 1
    assert entry["scores"]["2"] == new
    assert entry["rule"] == {**RULE, "alpha": ALPHA}
    assert set(entry["paired"]) == {"test_accuracy", "mirrored_test_accuracy", "photo_accuracy"}
    assert entry["paired"]["test_accuracy"] == {
        "candidate": new["test_accuracy"], "current": old["test_accuracy"],
        "difference": test.difference, "b": test.b, "c": test.c, "p": test.p,
    }  # fmt: skip
    # The same items: the accuracy difference is (c - b) over the 10,000 test images.
    assert test.difference == pytest.approx((test.c - test.b) / 10000)
    assert entry["photos"]["count"] == PHOTOS
    assert entry["test_images"] == 10000
    registry.verify_version(NAME, 2)  # the card changed, the model and its sha256 did not


def test_the_gate_measures_the_mirrored_test_set_and_says_when_real_pictures_are_missing(
    tmp_path, benchmark, good_model
):
    registry = registry_with(tmp_path, good_model)

    comparison = gated_promote(registry, NAME, 1, "staging", lambda: benchmark)

    scores = comparison.scores[1]
    assert 0.1 < scores["mirrored_test_accuracy"] < scores["test_accuracy"]  # shoes face left
    assert "real_accuracy" not in scores
    (entry,) = registry.card(NAME, 1)[CARD_KEY]
    assert "python -m evaluation.real_pictures fetch" in entry["real_pictures"]["note"]
    assert set(entry["per_class"]["1"]) == {"test", "test_mirrored", "photos"}


def test_the_gate_measures_real_pictures_per_source_and_class(
    tmp_path, real_benchmark, good_model, capsys
):
    registry = registry_with(tmp_path, tiny_model_bytes(1), good_model)
    registry.set_alias(NAME, "production", 1)

    comparison = gated_promote(registry, NAME, 2, "production", lambda: real_benchmark)

    scores = comparison.scores[2]
    assert scores["real_accuracy"] in (0.0, 0.5, 1.0)  # two pictures
    assert scores["real_accuracy/game-icons"] == scores["real_accuracy"]
    assert "real pictures" in capsys.readouterr().out
    (entry,) = registry.card(NAME, 2)[CARD_KEY]
    assert entry["real_pictures"]["count"] == 2
    assert entry["real_pictures"]["sources"] == {"game-icons": 2}
    assert set(entry["per_class"]["2"]["real"]) == {"T-shirt/top", "Ankle boot"}
    assert set(entry["per_class"]["2"]["test"]) == set(CLASS_NAMES)


def test_a_worse_candidate_is_refused_with_a_clear_message(tmp_path, benchmark, good_model):
    registry = registry_with(tmp_path, good_model, tiny_model_bytes(1))
    registry.set_alias(NAME, "production", 1)

    with pytest.raises(GateRefused) as refused:
        gated_promote(registry, NAME, 2, "production", lambda: benchmark)

    message = str(refused.value)
    assert message.startswith(f"gate refused {NAME} version 2 for production: worse than version 1")
    assert "production stays at 1" in message
    assert registry.aliases(NAME) == {"production": 1}
    (entry,) = registry.card(NAME, 2)[CARD_KEY]
    assert entry["verdict"] == "refused"
    test = entry["paired"]["test_accuracy"]
    assert f"test set {test['candidate']:.4f} < {test['current']:.4f} (b={test['b']}" in message
    assert test["b"] > 4000 > test["c"]  # random weights against a fitted classifier
    assert test["p"] == 0.0  # below the smallest float
    assert "test_accuracy" in entry["worse_on"]


# A fitted classifier against itself with one class's bias lowered: it gives away that class's
# closest calls, a few of them right and a few wrong. The shirt's loses 0.08 point of the test
# set (within the noise of 10,000 images); the bag's 0.12 point, almost all of it right answers.
@pytest.mark.parametrize(
    ("class_id", "shift", "promoted"), [(CLASS_NAMES.index("Shirt"), -0.2, True), (8, -0.3, False)]
)
def test_a_candidate_below_is_refused_only_when_the_paired_test_says_so(
    tmp_path, benchmark, good_model, class_id, shift, promoted
):
    registry = registry_with(tmp_path, good_model, with_bias_shift(good_model, class_id, shift))
    registry.set_alias(NAME, "production", 1)

    if promoted:
        gated_promote(registry, NAME, 2, "production", lambda: benchmark)
    else:
        with pytest.raises(GateRefused) as refused:
            gated_promote(registry, NAME, 2, "production", lambda: benchmark)

    (entry,) = registry.card(NAME, 2)[CARD_KEY]
    test = entry["paired"]["test_accuracy"]
    assert test["candidate"] < test["current"]  # below either way
    assert test["b"] > test["c"] > 0
    assert registry.aliases(NAME) == {"production": 2 if promoted else 1}
    if promoted:
        assert test["p"] > ALPHA
        assert entry["verdict"] == "promoted"
        assert entry["worse_on"] == []
    else:
        assert test["p"] <= ALPHA
        assert entry["worse_on"] == ["test_accuracy"]
        assert f"worse than version 1 on test set {test['candidate']:.4f} < " in str(refused.value)
        assert (
            f"{test['current']:.4f} (b={test['b']}, c={test['c']}, p={test['p']:.3g}); "
            "production stays at 1"
        ) in str(refused.value)


def test_the_same_model_ties_on_every_item_and_is_promoted(tmp_path, benchmark, good_model):
    registry = registry_with(tmp_path, good_model, good_model)
    registry.set_alias(NAME, "production", 1)

    comparison = gated_promote(registry, NAME, 2, "production", lambda: benchmark)

    assert registry.aliases(NAME) == {"production": 2}
    assert set(comparison.paired) == set(GATED) - {"real_accuracy"}
    for pair in comparison.paired.values():
        assert (pair.b, pair.c, pair.p, pair.difference) == (0, 0, 1.0, 0.0)


def test_a_new_alias_has_nothing_to_compare_with(tmp_path, benchmark, good_model, capsys):
    registry = registry_with(tmp_path, good_model)

    comparison = gated_promote(registry, NAME, 1, "staging", lambda: benchmark)

    assert comparison.current is None
    assert registry.aliases(NAME) == {"staging": 1}
    assert "candidate v1" in capsys.readouterr().out


def test_a_bad_version_fails_before_anything_is_measured(tmp_path, good_model):
    registry = registry_with(tmp_path, good_model)

    def never():
        raise AssertionError("the benchmark must not be loaded")

    with pytest.raises(Exception, match="version 7"):
        gated_promote(registry, NAME, 7, "production", never)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.registry", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_registry_command_line_gates_a_promotion(tmp_path, good_model):
    registry = registry_with(tmp_path, good_model, tiny_model_bytes(1), good_model)
    registry.set_alias(NAME, "production", 1)
    root = str(registry.root)
    gate = ("--gate", "--gate-photos", str(PHOTOS))

    refused = run_cli("--root", root, "promote", NAME, "2", "--alias", "production", *gate)

    assert refused.returncode == 1
    assert refused.stderr.startswith("error: gate refused fashion-mnist version 2")
    assert refused.stderr.count("\n") == 1
    assert "candidate v2" in refused.stdout
    assert registry.aliases(NAME) == {"production": 1}

    # Version 3 is the same model as version 1: not worse, so it passes.
    promoted = run_cli("--root", root, "promote", NAME, "3", "--alias", "production", *gate)

    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.endswith(f"{NAME}: production -> 3 (was 1)\n")
    assert registry.aliases(NAME) == {"production": 3}
    card = json.loads((registry.version_dir(NAME, 3) / "model.json").read_text())
    assert card[CARD_KEY][0]["verdict"] == "promoted"
    scores = card[CARD_KEY][0]["scores"]
    assert scores["3"] == scores["1"]


@pytest.mark.parametrize(("threshold", "promoted"), [(1e9, True), (-1e9, False)])
def test_a_candidate_flagging_more_tests_than_its_threshold_promises_is_refused(
    tmp_path, benchmark, good_model, threshold, promoted
):
    registry = registry_with(tmp_path, good_model)
    registry.set_alias(NAME, "production", 1)
    path = tmp_path / "judging.onnx"
    path.write_bytes(with_novelty(good_model))
    novelty = {"score": "energy", "threshold": threshold, "false_alarm_target": 0.05}
    registry.register(NAME, path, {**tiny_card(2), "novelty": novelty})

    if promoted:
        gated_promote(registry, NAME, 2, "production", lambda: benchmark)
        assert registry.aliases(NAME) == {"production": 2}
    else:
        with pytest.raises(GateRefused, match=r"flags 100\.00% of the test images, more than 1\.5"):
            gated_promote(registry, NAME, 2, "production", lambda: benchmark)
        assert registry.aliases(NAME) == {"production": 1}
