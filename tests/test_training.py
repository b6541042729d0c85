"""python -m training end to end: real data, real training, real ONNX, a real temporary registry."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from evaluation import real_pictures
from service import cpu
from service.contract import CLASS_NAMES
from service.preprocess import normalize
from service.registry import Registry
from tests.drawn_fixture import use_drawn_fixture
from tests.tiny_models import register_tiny
from training import data
from training.__main__ import BFLOAT16, main, parse_args

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = data.DEFAULT_DIR
NAME = "fashion-mnist"


def run_training(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the job as a user would, from the project root, with a clean environment."""
    env = {k: v for k, v in os.environ.items() if k not in (data.ENV_VAR, "FASHION_MODEL_DIR")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"  # keep TensorFlow's start-up chatter out of failure output
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its contents: to prove a failed run changed nothing."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def populated_registry(tmp_path):
    """A registry that already holds one version aliased production."""
    root = tmp_path / "registry"
    root.mkdir()
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"an earlier model")
    registry = Registry(root)
    registry.set_alias(NAME, "production", registry.register(NAME, onnx_file, {"note": "v1"}))
    return root


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_wrong_data_dir_fails_clearly_and_leaves_the_registry_untouched(
    tmp_path, populated_registry
):
    before = snapshot(populated_registry)
    wrong = tmp_path / "not-the-data"
    wrong.mkdir()

    result = run_training("--data-dir", str(wrong), "--registry", str(populated_registry))

    assert_one_line_error(result, str(wrong), "train-images-idx3-ubyte[.gz]", "t10k-labels")
    assert snapshot(populated_registry) == before


def test_missing_registry_root_fails_before_training(tmp_path):
    result = run_training("--registry", str(tmp_path / "absent"), "--data-dir", str(tmp_path))

    assert_one_line_error(result, str(tmp_path / "absent"))
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--name", "../escape"), ("--promote", "Production!")]
)
def test_invalid_model_or_alias_name_fails_before_training(populated_registry, option, value):
    before = snapshot(populated_registry)

    result = run_training(option, value, "--registry", str(populated_registry))

    assert_one_line_error(result, "invalid", repr(value))
    assert snapshot(populated_registry) == before


@pytest.mark.skipif(
    not REAL_DATA.is_dir(), reason=f"needs Debian's dataset-fashion-mnist in {REAL_DATA}"
)
def test_missing_teachers_fail_before_training(populated_registry):
    before = snapshot(populated_registry)

    # Version 13's recipe distils from versions 5, 6 and 7, which this registry lacks.
    result = run_training("--arch", "cnn-decay", "--registry", str(populated_registry))

    assert_one_line_error(result, "teacher versions [5, 6, 7]", "not registered")
    assert snapshot(populated_registry) == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--weight-decay", "-0.1"], "--weight-decay must not be negative"),
        (["--arch", "mlp", "--weight-decay", "0.1"], "--weight-decay needs a CNN"),
    ],
)
def test_nonsensical_settings_are_usage_errors(tmp_path, options, message):
    result = run_training(*options, "--registry", str(tmp_path))

    assert result.returncode == 2
    assert message in result.stderr


def test_the_gate_needs_an_alias_to_promote(tmp_path):
    result = run_training("--gate", "--registry", str(tmp_path))

    assert result.returncode == 2
    assert "--gate needs --promote ALIAS" in result.stderr


def cpu_with(monkeypatch, tmp_path: Path, *flags: str) -> None:
    """Make service.cpu read a cpuinfo file listing these flags besides AVX2's."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma {' '.join(flags)}\n")
    monkeypatch.setattr(cpu, "CPUINFO", cpuinfo)


def test_each_architecture_has_its_own_defaults_and_options_override_them(monkeypatch, tmp_path):
    cpu_with(monkeypatch, tmp_path, "avx512_bf16")
    mlp, cnn = parse_args(["--arch", "mlp"]), parse_args(["--arch", "cnn"])
    real, ood = parse_args(["--arch", "cnn-real"]), parse_args(["--arch", "cnn-ood"])
    deep, long = parse_args(["--arch", "cnn-deep"]), parse_args(["--arch", "cnn-long"])
    wide, taught = parse_args(["--arch", "cnn-wide"]), parse_args(["--arch", "cnn-taught"])
    decay, shipped = parse_args(["--arch", "cnn-decay"]), parse_args([])

    assert shipped.arch == "cnn-mirror"  # the default: `python -m training` trains the shipped one
    assert (shipped.epochs, shipped.validation, shipped.mirror) == (40, 2000, True)
    assert (shipped.teachers, shipped.weight_decay, shipped.precision) == ((), 0.3, BFLOAT16)
    assert (decay.epochs, decay.weight_decay, decay.teachers) == (22, 0.3, (5, 6, 7))
    assert (decay.validation, decay.mirror) == (5000, False)  # version 13's command still makes it
    assert (taught.epochs, taught.precision, taught.teachers) == (22, "mixed_bfloat16", (5, 6, 7))
    assert (wide.epochs, wide.precision, wide.novelty, wide.teachers) == (
        22, "mixed_bfloat16", True, ()
    )  # fmt: skip
    assert parse_args(["--arch", "cnn-decay", "--teachers"]).teachers == []  # labels alone
    assert (taught.weight_decay, wide.weight_decay, mlp.weight_decay) == (0.0, 0.0, 0.0)
    assert (long.epochs, long.precision) == (28, "mixed_bfloat16")
    assert (deep.epochs, deep.precision) == (18, "float32")  # version 5's command still makes it
    assert (deep.outlier_weight, deep.drawn_repeat, deep.novelty) == (0.3, 30, True)
    assert (long.outlier_weight, long.drawn_repeat, long.novelty) == (0.3, 30, True)
    assert (ood.outlier_weight, ood.drawn_repeat, ood.novelty) == (0.5, 40, True)
    assert (real.augment, real.mirror, real.calibrate, real.validation) == (True, False, True, 5000)
    assert (real.outlier_weight, real.drawn_repeat, real.novelty) == (0.0, 0, False)
    assert (mlp.epochs, mlp.batch_size, mlp.learning_rate) == (10, 32, 1e-3)
    assert (mlp.validation, mlp.augment, mlp.mirror, mlp.calibrate) == (0, False, False, False)
    assert (cnn.epochs, cnn.batch_size, cnn.validation, cnn.augment) == (15, 128, 5000, True)
    assert (cnn.mirror, cnn.calibrate) == (False, False)  # version 2's command still makes it
    tuned = parse_args(["--arch", "cnn", "--epochs", "3", "--no-augment", "--validation", "0",
                        "--patience", "0"])  # fmt: skip
    assert (tuned.epochs, tuned.augment, tuned.validation) == (3, False, 0)


def test_a_recipe_trains_in_float32_on_a_cpu_without_bfloat16(monkeypatch, tmp_path):
    cpu_with(monkeypatch, tmp_path)  # AVX2 alone: bfloat16 would be emulated

    recipe, asked = parse_args([]), parse_args(["--precision", "mixed_bfloat16"])

    assert recipe.precision == "float32"
    assert "not the recipe's mixed_bfloat16" in recipe.precision_note
    assert (asked.precision, asked.precision_note) == ("mixed_bfloat16", None)
    assert parse_args(["--arch", "cnn-deep"]).precision_note is None  # a float32 recipe


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--no-calibrate"], "--novelty needs --calibrate"),
        (["--no-augment"], "--outlier-weight and --drawn-repeat need --augment"),
        (["--outlier-weight", "-1"], "must not be negative"),
    ],
)
def test_outlier_exposure_and_novelty_settings_are_checked(tmp_path, options, problem):
    result = run_training(*options, "--registry", str(tmp_path))

    assert result.returncode == 2
    assert problem in result.stderr


def test_calibration_needs_a_validation_set(tmp_path):
    result = run_training("--validation", "0", "--registry", str(tmp_path))

    assert result.returncode == 2
    assert "--calibrate needs a validation set" in result.stderr


def real_test_set() -> tuple[np.ndarray, np.ndarray]:
    dataset = data.load(REAL_DATA)
    return normalize(dataset.test_images), dataset.test_labels


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_DATA.is_dir(), reason=f"needs Debian's dataset-fashion-mnist in {REAL_DATA}"
)
def test_short_training_run_registers_a_verified_promoted_version(tmp_path, capsys):
    root = tmp_path / "registry"
    root.mkdir()

    # In this process, through the same main() as `python -m training`: TensorFlow is already
    # imported here (test_export), and a second import costs minutes on a busy two-core machine.
    # The subprocess tests above cover the command line itself.
    status = main([
        "--arch", "mlp", "--data-dir", str(REAL_DATA), "--registry", str(root), "--epochs", "2",
        "--train-limit", "6000", "--promote", "production",
    ])  # fmt: skip
    out, err = capsys.readouterr()

    assert status == 0, err
    assert "epoch 1/2" in out
    assert "epoch 2/2" in out
    assert f"registered {NAME} version 1" in out
    registry = Registry(root)
    assert registry.versions(NAME) == [1]
    assert registry.aliases(NAME) == {"production": 1}
    registry.verify_version(NAME, 1)

    card = registry.card(NAME, 1)
    for field in (
        "name", "version", "created_at", "sha256", "frameworks", "architecture", "training",
        "data", "metrics", "parity", "inputs", "outputs", "class_names",
    ):  # fmt: skip
        assert field in card, field
    assert card["name"] == NAME
    assert card["version"] == 1
    assert card["class_names"] == list(CLASS_NAMES)
    assert set(card["frameworks"]) == {
        "python", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy",
    }  # fmt: skip
    assert card["architecture"]["name"] == "mlp-128"
    assert card["architecture"]["parameters"] == 28 * 28 * 128 + 128 + 128 * 10 + 10
    training = card["training"]
    assert training["epochs"] == 2
    assert training["batch_size"] == 32
    assert training["seed"] == 42
    assert training["learning_rate_schedule"] == "cosine"
    assert (training["optimizer"], training["weight_decay"]) == ("adam", 0.0)
    assert len(training["history"]["loss"]) == len(training["history"]["accuracy"]) == 2
    assert training["wall_seconds"] > 0
    assert card["data"]["train_count"] == 6000
    assert card["data"]["test_count"] == 10000
    assert card["data"]["files"] == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in REAL_DATA.glob("*-ubyte.gz")
    }
    assert card["inputs"][0]["name"] == "image"
    assert card["outputs"][0]["name"] == "probabilities"

    parity = card["parity"]
    assert parity["images"] == 10000
    assert parity["max_abs_diff"] <= 1e-4
    assert parity["top1_agreement"] >= 0.999

    metrics = card["metrics"]
    assert metrics["test_accuracy"] >= 0.75  # two epochs on 6000 images: ~0.80
    assert set(metrics["per_class_accuracy"]) == set(CLASS_NAMES)
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.sum() == 10000
    assert np.trace(matrix) / 10000 == pytest.approx(metrics["test_accuracy"])

    version_dir = registry.version_dir(NAME, 1)
    for picture in ("training.png", "confusion.png"):
        assert (version_dir / picture).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    on_disk = json.loads((version_dir / "model.json").read_text())
    model_bytes = registry.model_path(NAME, 1).read_bytes()
    assert on_disk["sha256"] == hashlib.sha256(model_bytes).hexdigest()

    # The registered file, run by onnxruntime as the service will, reproduces the card's accuracy.
    images, labels = real_test_set()
    session = ort.InferenceSession(
        str(registry.model_path(NAME, 1)), providers=["CPUExecutionProvider"]
    )
    (probabilities,) = session.run(["probabilities"], {"image": images})
    onnx_accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    assert onnx_accuracy == pytest.approx(
        metrics["test_accuracy"], abs=1 - parity["top1_agreement"]
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_DATA.is_dir(), reason=f"needs Debian's dataset-fashion-mnist in {REAL_DATA}"
)
def test_a_short_real_picture_cnn_run_with_weight_decay_is_calibrated_mirrored_and_gated(
    tmp_path, capsys
):
    root = tmp_path / "registry"
    root.mkdir()
    registry = Registry(root)
    registry.set_alias(NAME, "production", register_tiny(registry, NAME, 1, tmp_path))

    status = main([
        "--arch", "cnn-real", "--data-dir", str(REAL_DATA), "--registry", str(root),
        "--epochs", "2", "--train-limit", "3000", "--validation", "500", "--mirror",
        "--weight-decay", "0.1", "--promote", "production", "--gate", "--gate-photos", "11",
    ])  # fmt: skip
    out, err = capsys.readouterr()

    assert status == 0, err
    assert "val_accuracy" in out
    assert "candidate v2" in out  # the gate's table
    assert "alias production -> 2 (was 1)" in out
    assert registry.aliases(NAME) == {"production": 2}
    card = registry.card(NAME, 2)
    assert card["architecture"]["name"].startswith("cnn-")
    assert card["architecture"]["flops_per_image"] > 1e6
    training = card["training"]
    assert training["architecture"] == "cnn-real"
    assert training["augmentation"]["probability"] > 0
    assert training["augmentation"]["mirror"] > 0
    assert (training["optimizer"], training["weight_decay"]) == ("adamw", 0.1)
    calibration = card["calibration"]
    assert calibration["temperature"] == card["inference"]["temperature"] > 0
    assert calibration["fitted_on"] == "the 500 validation images"
    assert calibration["validation"]["nll_after"] <= calibration["validation"]["nll_before"]
    assert set(calibration["test"]) == {"ece_before", "ece_after", "nll_before", "nll_after"}
    assert card["inference"]["test_time_mirroring"] is True
    picture = registry.version_dir(NAME, 2) / "reliability.png"
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # Mirroring lives in the graph: an image and its mirror get the same answer.
    images, _ = real_test_set()
    session = ort.InferenceSession(
        str(registry.model_path(NAME, 2)), providers=["CPUExecutionProvider"]
    )
    (answers,) = session.run(["probabilities"], {"image": images[:100]})
    mirrored = np.ascontiguousarray(images[:100, :, ::-1])
    np.testing.assert_allclose(
        session.run(["probabilities"], {"image": mirrored})[0], answers, atol=1e-6
    )
    assert training["validation_images"] == 500
    assert 1 <= training["best_epoch"] <= training["epochs_run"] <= 2
    assert len(training["history"]["val_accuracy"]) == training["epochs_run"]
    assert training["cpu_seconds"] > 0
    assert card["data"]["train_count"] == 2500
    assert card["data"]["validation_count"] == 500
    (gate,) = card["gate"]
    assert gate["verdict"] == "promoted"
    assert gate["scores"]["2"]["test_accuracy"] == pytest.approx(
        card["metrics"]["test_accuracy"], abs=1 - card["parity"]["top1_agreement"]
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_DATA.is_dir() or shutil.which(real_pictures.RENDERER) is None,
    reason=f"needs Debian's dataset-fashion-mnist in {REAL_DATA} and rsvg-convert",
)
def test_a_short_outlier_exposure_run_exports_and_records_its_novelty_judgement(
    tmp_path, capsys, monkeypatch
):
    cpu_with(monkeypatch, tmp_path)  # float32, whatever this CPU has
    cache = tmp_path / "cache"  # the tiny icon fixture: nothing is fetched
    use_drawn_fixture(monkeypatch, cache, texts=4)
    monkeypatch.setenv(real_pictures.ENV_VAR, str(cache))
    root = tmp_path / "registry"
    root.mkdir()
    teacher = register_tiny(Registry(root), NAME, 0, tmp_path)  # a real ONNX model to distil

    status = main([
        "--data-dir", str(REAL_DATA), "--registry", str(root), "--epochs", "1",
        "--train-limit", "2000", "--validation", "500", "--drawn-repeat", "3",
        "--teachers", str(teacher),
    ])  # fmt: skip
    out, err = capsys.readouterr()

    assert status == 0, err
    assert "drawn pictures: 12 outliers, 2 clothing" in out
    assert f"teachers: versions {teacher}, agreeing with" in out
    card = Registry(root).card(NAME, teacher + 1)
    assert card["training"]["architecture"] == "cnn-mirror"  # the default recipe
    assert card["inference"]["test_time_mirroring"] is True
    assert (card["training"]["optimizer"], card["training"]["weight_decay"]) == ("adamw", 0.3)
    assert card["training"]["teachers"]["versions"] == [teacher]
    assert card["training"]["loss"] == "categorical_crossentropy(from_logits=True)"
    assert card["training"]["precision"] == "float32"
    assert "precision: float32, not the recipe's mixed_bfloat16" in out
    assert card["architecture"]["name"] == "cnn-32-48-48-96-96"
    assert card["training"]["augmentation"]["calm_epochs"] == 5
    assert card["training"]["drawn_pictures"]["outliers"] == 12
    novelty = card["novelty"]
    assert novelty["false_alarm_target"] == 0.05
    assert novelty["measured"]["validation_flagged"] == pytest.approx(0.04, abs=0.005)
    assert "not fetched" in novelty["measured"]["non_clothing"]["note"]
    assert [o["name"] for o in card["outputs"]] == ["probabilities", "novelty"]
    assert card["parity"]["novelty_max_relative_diff"] <= 1e-4
    session = ort.InferenceSession(
        str(Registry(root).model_path(NAME, teacher + 1)), providers=["CPUExecutionProvider"]
    )
    images, _ = real_test_set()
    (scores,) = session.run(["novelty"], {"image": images})
    assert (scores > novelty["threshold"]).mean() == pytest.approx(
        novelty["measured"]["test_flagged"], abs=1e-3
    )
