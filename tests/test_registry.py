"""The model registry on real folders, with real concurrent and killed processes."""

import datetime
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from service.errors import (
    AliasNotFound,
    BadRequest,
    IntegrityError,
    InvalidName,
    ModelNotFound,
    NoAliasHistory,
    RegistryError,
    VersionNotFound,
)
from service.registry import HISTORY_LIMIT, Registry
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]

# A child that registers with an extra file which is a FIFO nobody writes to: it blocks in the
# middle of its registration (model.onnx already staged) until the test signals it.
BLOCKED_REGISTRATION = """
import signal, sys
from service.registry import HISTORY_LIMIT, Registry
# A shell's background job starts with SIGINT ignored, and children inherit that: interruptible.
signal.signal(signal.SIGINT, signal.default_int_handler)
root, model, fifo = sys.argv[1:]
Registry(root).register("m", model, {}, extra_files={"slow.bin": fifo})
"""

# A child that waits for a start file, then registers several versions and prints their numbers.
RACING_REGISTRATIONS = """
import pathlib, sys, time
from service.registry import HISTORY_LIMIT, Registry
root, worker, start = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
registry = Registry(root)
while not start.exists():
    time.sleep(0.005)
for run in range(2):
    model = pathlib.Path(root).parent / f"model-{worker}-{run}.onnx"
    model.write_bytes(f"worker {worker} run {run}".encode())
    print(registry.register("m", model, {"worker": int(worker), "run": run}))
"""


@pytest.fixture
def empty_registry(tmp_path: Path) -> Registry:
    """A registry folder with no models yet."""
    root = tmp_path / "models"
    root.mkdir()
    return Registry(root)


@pytest.fixture
def fake_model(tmp_path: Path):
    """Write a small stand-in for model.onnx (the registry never parses it) and return its path."""
    counter = itertools.count()

    def make(content: bytes = b"fake onnx bytes") -> Path:
        path = tmp_path / f"fake-{next(counter)}.onnx"
        path.write_bytes(content)
        return path

    return make


@pytest.fixture
def populated(empty_registry: Registry, fake_model) -> Registry:
    """Model "m" with versions 1 and 2, "production" -> 1."""
    empty_registry.register("m", fake_model(b"one"), {"note": "first"})
    empty_registry.register("m", fake_model(b"two"), {"note": "second"})
    empty_registry.set_alias("m", "production", 1)
    return empty_registry


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its content: to prove that a failed operation changed nothing."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def staged_dirs(model_dir: Path) -> list[Path]:
    return [p for p in model_dir.glob(".tmp-*") if p.is_dir()]


def start_blocked_registration(registry: Registry, model: Path, tmp_path: Path) -> subprocess.Popen:
    """Start a child registering "m" and return once it is stuck half-way through."""
    fifo = tmp_path / "never-written.fifo"
    os.mkfifo(fifo)
    child = subprocess.Popen(
        [sys.executable, "-c", BLOCKED_REGISTRATION, str(registry.root), str(model), str(fifo)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: any((d / "model.onnx").exists() for d in staged_dirs(registry.root / "m")),
        "the registration to stage model.onnx",
        interval=0.01,
        process=child,
    )
    # Then blocked in the FIFO's open, which a signal interrupts; one that came just before the
    # open would be handled only once it returned, that is never.
    wchan = Path(f"/proc/{child.pid}/wchan")
    wait_for(
        lambda: wchan.read_text() == "wait_for_partner",
        "the registration to block opening the FIFO",
        interval=0.01,
        process=child,
    )
    return child


# -- names and versions ----------------------------------------------------------------------------


def test_alias_names_follow_the_same_rule(populated):
    with pytest.raises(InvalidName, match="invalid alias name"):
        populated.set_alias("m", "Production", 1)
    with pytest.raises(InvalidName, match="invalid alias name"):
        populated.resolve("m", alias="../x")


def test_names_are_checked_before_the_filesystem(tmp_path):
    # The root does not exist: an invalid name must still be reported as such.
    registry = Registry(tmp_path / "nowhere")
    with pytest.raises(InvalidName):
        registry.versions("..")
    with pytest.raises(InvalidName):
        registry.register("../escape", tmp_path / "x.onnx", {})
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, None])
def test_versions_must_be_positive_integers(populated, version):
    with pytest.raises(BadRequest, match="positive integers"):
        populated.card("m", version)


# -- registering -----------------------------------------------------------------------------------


def test_register_numbers_versions_and_writes_the_card(empty_registry, fake_model, tmp_path):
    plot = tmp_path / "training.png"
    plot.write_bytes(b"\x89PNG fake plot")
    card = {"metrics": {"test_accuracy": 0.9}}

    assert (
        empty_registry.register("m", fake_model(b"first model"), card, {"training.png": plot}) == 1
    )
    assert empty_registry.register("m", fake_model(b"second model"), card) == 2

    assert empty_registry.models() == ["m"]
    assert empty_registry.versions("m") == [1, 2]
    first = empty_registry.card("m", 1)
    assert first["name"] == "m"
    assert first["version"] == 1
    assert first["sha256"] == hashlib.sha256(b"first model").hexdigest()
    assert first["metrics"] == {"test_accuracy": 0.9}
    created = datetime.datetime.fromisoformat(first["created_at"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert card == {"metrics": {"test_accuracy": 0.9}}, "the caller's card must not be modified"
    assert empty_registry.model_path("m", 1).read_bytes() == b"first model"
    assert (empty_registry.version_dir("m", 1) / "training.png").read_bytes() == plot.read_bytes()
    assert not (empty_registry.version_dir("m", 2) / "training.png").exists()
    text = (empty_registry.version_dir("m", 1) / "model.json").read_text()
    assert text == json.dumps(first, sort_keys=True, indent=2) + "\n"


def test_register_keeps_a_given_created_at(empty_registry, fake_model):
    empty_registry.register("m", fake_model(), {"created_at": "2024-01-02T03:04:05+00:00"})
    assert empty_registry.card("m", 1)["created_at"] == "2024-01-02T03:04:05+00:00"


def test_models_are_listed_sorted_and_independent(empty_registry, fake_model):
    empty_registry.register("zeta", fake_model(), {})
    empty_registry.register("alpha", fake_model(), {})
    empty_registry.register("alpha", fake_model(), {})
    assert empty_registry.models() == ["alpha", "zeta"]
    assert empty_registry.versions("zeta") == [1]
    assert empty_registry.versions("alpha") == [1, 2]


def test_unknown_model_and_version(populated):
    with pytest.raises(ModelNotFound, match="no model named 'other'"):
        populated.versions("other")
    with pytest.raises(ModelNotFound):
        populated.card("other", 1)
    with pytest.raises(VersionNotFound, match="no version 9"):
        populated.card("m", 9)


def test_concurrent_registrations_get_distinct_versions(empty_registry, tmp_path):
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RACING_REGISTRATIONS,
                str(empty_registry.root),
                str(w),
                str(start),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    start.touch()
    returned = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        returned += [int(line) for line in out.split()]

    assert sorted(returned) == list(range(1, 9))
    assert empty_registry.versions("m") == list(range(1, 9))
    for version in returned:
        card = empty_registry.card("m", version)
        content = f"worker {card['worker']} run {card['run']}".encode()
        assert empty_registry.model_path("m", version).read_bytes() == content
    assert empty_registry.verify() == []
    assert staged_dirs(empty_registry.root / "m") == []


def test_killed_registration_leaves_no_version(populated, fake_model, tmp_path):
    before = snapshot(populated.root)
    child = start_blocked_registration(populated, fake_model(b"never registered"), tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stderr.close()

    assert populated.versions("m") == [1, 2]
    after = snapshot(populated.root)
    assert {k: v for k, v in after.items() if not k.startswith("m/.tmp-")} == before
    assert populated.verify() == []
    assert populated.register("m", fake_model(b"three"), {}) == 3
    assert populated.model_path("m", 3).read_bytes() == b"three"


def test_killed_first_registration_leaves_no_model(empty_registry, fake_model, tmp_path):
    child = start_blocked_registration(empty_registry, fake_model(), tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stderr.close()

    assert empty_registry.models() == []
    with pytest.raises(ModelNotFound):
        empty_registry.versions("m")
    assert empty_registry.register("m", fake_model(), {}) == 1


def test_interrupted_registration_removes_its_staging_folder(populated, fake_model, tmp_path):
    before = snapshot(populated.root)
    child = start_blocked_registration(populated, fake_model(), tmp_path)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)

    assert child.returncode != 0
    assert "KeyboardInterrupt" in err
    assert staged_dirs(populated.root / "m") == []
    assert snapshot(populated.root) == before


@pytest.mark.parametrize(
    "read",
    [Registry.models, lambda r: r.versions("m"), lambda r: r.card("m", 1)],
    ids=["models", "versions", "card"],
)
def test_reading_a_missing_root_says_so(tmp_path, read):
    with pytest.raises(RegistryError, match="the model registry folder does not exist"):
        read(Registry(tmp_path / "missing"))


def test_registering_into_a_missing_root_creates_nothing(tmp_path, fake_model):
    registry = Registry(tmp_path / "missing")
    with pytest.raises(RegistryError, match="does not exist"):
        registry.register("m", fake_model(), {})
    assert not registry.root.exists(), "register must not create the root"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda r, f: r.register("Bad", f(), {}), InvalidName),
        (lambda r, f: r.register("m", f().with_name("absent.onnx"), {}), BadRequest),
        (lambda r, f: r.register("m", f().parent, {}), BadRequest),
        (lambda r, f: r.register("m", f(), {"path": Path("/")}), BadRequest),
        (lambda r, f: r.register("m", f(), {"loss": float("nan")}), BadRequest),
        (lambda r, f: r.register("m", f(), {}, {"model.json": f()}), BadRequest),
        (lambda r, f: r.register("m", f(), {}, {"../x.png": f()}), InvalidName),
        (lambda r, f: r.register("m", f(), {}, {"plot.png": f().with_name("absent")}), BadRequest),
        (lambda r, f: r.set_alias("m", "production", 3), VersionNotFound),
        (lambda r, f: r.set_alias("other", "production", 1), ModelNotFound),
        (lambda r, f: r.rollback("m", "production"), NoAliasHistory),
        (lambda r, f: r.rollback("m", "staging"), AliasNotFound),
    ],
    ids=[
        "bad-name", "missing-model-file", "directory-as-model", "card-not-json", "card-with-nan",
        "reserved-extra-name", "bad-extra-name", "missing-extra-file", "alias-to-missing-version",
        "alias-on-unknown-model", "rollback-without-history", "rollback-unknown-alias",
    ],
)  # fmt: skip
def test_failed_operations_change_nothing(populated, fake_model, call, error):
    before = snapshot(populated.root)
    with pytest.raises(error):
        call(populated, fake_model)
    assert snapshot(populated.root) == before


# -- aliases ---------------------------------------------------------------------------------------


def test_aliases_and_resolve(populated):
    assert populated.aliases("m") == {"production": 1}
    assert populated.resolve("m") == 1
    assert populated.resolve("m", alias="production") == 1
    assert populated.resolve("m", version=2) == 2
    assert populated.set_alias("m", "staging", 2) is None
    assert populated.resolve("m", alias="staging") == 2
    with pytest.raises(AliasNotFound, match="no alias 'canary'"):
        populated.resolve("m", alias="canary")
    with pytest.raises(VersionNotFound):
        populated.resolve("m", version=5)
    with pytest.raises(BadRequest, match="not both"):
        populated.resolve("m", version=1, alias="production")


def test_resolve_without_production_alias(empty_registry, fake_model):
    empty_registry.register("m", fake_model(), {})
    with pytest.raises(AliasNotFound, match="production"):
        empty_registry.resolve("m")


def test_promote_records_history_and_rollback_walks_back(empty_registry, fake_model):
    for _ in range(3):
        empty_registry.register("m", fake_model(), {})
    assert empty_registry.set_alias("m", "production", 1) is None
    assert empty_registry.set_alias("m", "production", 2) == 1
    assert empty_registry.set_alias("m", "production", 3) == 2
    assert empty_registry.alias_history("m") == {"production": [1, 2]}

    assert empty_registry.rollback("m", "production") == (3, 2)
    assert empty_registry.aliases("m") == {"production": 2}
    assert empty_registry.rollback("m", "production") == (2, 1)
    assert empty_registry.aliases("m") == {"production": 1}
    with pytest.raises(NoAliasHistory, match="nothing to roll back to"):
        empty_registry.rollback("m", "production")
    assert empty_registry.aliases("m") == {"production": 1}


def test_promoting_to_the_current_target_is_a_no_op(populated):
    stamp = populated.aliases_stamp("m")
    assert populated.set_alias("m", "production", 1) == 1
    assert populated.alias_history("m") == {}
    assert populated.aliases_stamp("m") == stamp


def test_rollback_skips_history_entries_equal_to_the_current_target(populated):
    # What a crash between set_alias's two writes leaves behind: the history already names the
    # current target.
    (populated.root / "m" / "alias_history.json").write_text('{"production": [2, 1]}')
    assert populated.rollback("m", "production") == (1, 2)


def test_aliases_stamp_changes_with_every_alias_change(empty_registry, fake_model):
    empty_registry.register("m", fake_model(), {})
    empty_registry.register("m", fake_model(), {})
    assert empty_registry.aliases_stamp("m") is None
    empty_registry.set_alias("m", "production", 1)
    first = empty_registry.aliases_stamp("m")
    empty_registry.set_alias("m", "production", 2)
    second = empty_registry.aliases_stamp("m")
    empty_registry.rollback("m", "production")
    assert len({first, second, empty_registry.aliases_stamp("m")}) == 3


# -- corrupt files and verification ----------------------------------------------------------------


@pytest.mark.parametrize("content", ["{not json", '["production"]', '{"production": "1"}'])
def test_corrupt_aliases_file(populated, content):
    path = populated.root / "m" / "aliases.json"
    path.write_text(content)
    with pytest.raises(RegistryError, match=r"aliases\.json"):
        populated.aliases("m")
    with pytest.raises(RegistryError):
        populated.set_alias("m", "production", 2)
    assert path.read_text() == content
    assert any("aliases.json" in problem for problem in populated.verify("m"))


def test_corrupt_card(populated):
    (populated.version_dir("m", 2) / "model.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(RegistryError, match=r"corrupt JSON in .*2/model.json"):
        populated.card("m", 2)
    with pytest.raises(IntegrityError, match="m version 2"):
        populated.verify_version("m", 2)
    populated.verify_version("m", 1)


def test_verify_detects_a_tampered_model(populated):
    assert populated.verify() == []
    populated.model_path("m", 2).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"m version 2: model\.onnx has sha256"):
        populated.verify_version("m", 2)
    problems = populated.verify()
    assert len(problems) == 1
    assert problems[0].startswith("m version 2:")
    assert populated.verify("m") == problems


def test_verify_reports_missing_files_and_dangling_aliases(populated):
    populated.model_path("m", 1).unlink()
    (populated.version_dir("m", 2) / "model.json").unlink()
    with pytest.raises(IntegrityError, match=r"model\.onnx is missing"):
        populated.verify_version("m", 1)
    with pytest.raises(IntegrityError, match=r"model\.json is missing"):
        populated.verify_version("m", 2)
    (populated.root / "m" / "aliases.json").write_text('{"production": 7}')
    problems = populated.verify()
    assert len(problems) == 3
    assert "alias 'production' points at version 7, which does not exist" in problems[-1]
    with pytest.raises(VersionNotFound, match="points at version 7"):
        populated.resolve("m")


def test_verify_detects_a_version_folder_copied_to_the_wrong_place(populated):
    os.rename(populated.version_dir("m", 2), populated.root / "m" / "5")
    with pytest.raises(IntegrityError, match="describes 'm' version 2"):
        populated.verify_version("m", 5)


# -- verified alias moves (issue 12) ---------------------------------------------------------------


def test_set_alias_refuses_a_version_that_fails_verification(populated):
    populated.model_path("m", 2).write_bytes(b"tampered")
    before = snapshot(populated.root)
    with pytest.raises(IntegrityError, match="sha256"):
        populated.set_alias("m", "production", 2)

    def refuse(data: bytes) -> None:
        raise IntegrityError(f"the verifier saw {data!r}")

    with pytest.raises(IntegrityError, match="the verifier saw b'one'"):
        populated.set_alias("m", "staging", 1, verify=refuse)
    assert snapshot(populated.root) == before


def test_rollback_works_when_the_current_target_is_gone(populated):
    populated.set_alias("m", "production", 2)
    shutil.rmtree(populated.version_dir("m", 2))
    assert populated.rollback("m", "production") == (2, 1)
    assert populated.aliases("m") == {"production": 1}


def test_rollback_skips_earlier_targets_that_are_gone(empty_registry, fake_model):
    for _ in range(3):
        empty_registry.register("m", fake_model(), {})
    for version in (1, 2, 3):
        empty_registry.set_alias("m", "production", version)
    shutil.rmtree(empty_registry.version_dir("m", 2))
    assert empty_registry.rollback("m", "production") == (3, 1)


def test_rollback_refuses_an_earlier_target_that_fails_verification(populated):
    populated.set_alias("m", "production", 2)
    populated.model_path("m", 1).write_bytes(b"tampered")
    before = snapshot(populated.root)
    with pytest.raises(IntegrityError, match="m version 1"):
        populated.rollback("m", "production")
    assert snapshot(populated.root) == before


def test_alias_history_keeps_the_last_targets_only(empty_registry, fake_model):
    empty_registry.register("m", fake_model(b"one"), {})
    empty_registry.register("m", fake_model(b"two"), {})
    for _ in range(HISTORY_LIMIT + 10):
        empty_registry.set_alias("m", "production", 1)
        empty_registry.set_alias("m", "production", 2)
    earlier = empty_registry.alias_history("m")["production"]
    assert len(earlier) == HISTORY_LIMIT
    assert earlier[-2:] == [2, 1]


@pytest.mark.parametrize("alias", ["0", "1e3", "7", "-x", "Prod"])
def test_aliases_must_start_with_a_letter(populated, alias):
    with pytest.raises(InvalidName, match="starting with a letter"):
        populated.set_alias("m", alias, 1)


def test_an_older_aliases_file_with_a_numeric_alias_stays_readable(populated):
    (populated.root / "m" / "aliases.json").write_text('{"production": 1, "0": 2}')
    assert populated.aliases("m") == {"production": 1, "0": 2}


def test_error_messages_never_show_the_server_layout(populated):
    (populated.root / "m" / "aliases.json").write_text("{not json")
    (populated.version_dir("m", 2) / "model.json").write_text("[]")
    errors = []
    for call in (lambda: populated.aliases("m"), lambda: populated.card("m", 2)):
        with pytest.raises(RegistryError) as caught:
            call()
        errors.append(str(caught.value))
    with pytest.raises(RegistryError) as caught:
        Registry(populated.root / "gone").models()
    errors.append(str(caught.value))
    assert errors[0].startswith("corrupt JSON in m/aliases.json")
    assert errors[1] == "m/2/model.json is not a JSON object"
    for message in errors:
        assert str(populated.root) not in message


def test_concurrent_rollbacks_each_report_the_target_they_moved_from(empty_registry, fake_model):
    """Issue 12.6: DELETE's "previous" was read outside the lock, so two rollbacks could both
    claim to have moved the alias from the same version."""
    for _ in range(5):
        empty_registry.register("m", fake_model(), {})
    for version in range(1, 6):
        empty_registry.set_alias("m", "production", version)
    start = threading.Barrier(4)
    moves = []

    def roll_back() -> None:
        start.wait()
        moves.append(empty_registry.rollback("m", "production"))

    threads = [threading.Thread(target=roll_back) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(moves, reverse=True) == [(5, 4), (4, 3), (3, 2), (2, 1)]
