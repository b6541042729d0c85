"""`python -m service.registry` run as a real subprocess against real registry folders."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.registry import Registry
from tests.test_registry import snapshot
from tests.tiny_models import tiny_model_bytes

REPO = Path(__file__).resolve().parents[1]


def build_registry(root: Path) -> Registry:
    """Model "m": versions 1 and 2 (tiny real ONNX models: promote loads them), production -> 1."""
    root.mkdir()
    registry = Registry(root)
    for seed, note in enumerate(("one", "two")):
        model = root.parent / "tiny.onnx"
        model.write_bytes(tiny_model_bytes(seed))
        registry.register("m", model, {"note": note})
    registry.set_alias("m", "production", 1)
    return registry


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.registry", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, status: int, *fragments: str):
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Registry:
    """A registry the read-only tests share: they must leave it exactly as it is."""
    return build_registry(tmp_path_factory.mktemp("shared") / "models")


@pytest.fixture
def own(tmp_path) -> Registry:
    """A registry for one test that changes it."""
    return build_registry(tmp_path / "models")


def test_list(shared):
    result = run_cli("--root", str(shared.root), "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "m  versions: 1, 2  aliases: production -> 1\n"


def test_list_an_empty_registry(tmp_path):
    result = run_cli("--root", str(tmp_path), "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"no models in {tmp_path}\n"


def test_root_defaults_to_the_environment(shared):
    result = run_cli("list", env={**os.environ, "FASHION_MODEL_DIR": str(shared.root)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("m  versions: 1, 2")


def test_show_a_model(shared):
    result = run_cli("--root", str(shared.root), "show", "m")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["model: m", "versions: 1, 2", "aliases: production -> 1"]


def test_show_a_version_card(shared):
    result = run_cli("--root", str(shared.root), "show", "m:2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == shared.card("m", 2)
    assert json.loads(result.stdout)["note"] == "two"


def test_verify_a_sound_registry(shared):
    result = run_cli("--root", str(shared.root), "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "OK m: 2 version(s) match their cards\n"


def test_promote_and_roll_back(own):
    root = str(own.root)
    promoted = run_cli("--root", root, "promote", "m", "2", "--alias", "production")
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout == "m: production -> 2 (was 1)\n"
    assert own.aliases("m") == {"production": 2}
    staged = run_cli("--root", root, "promote", "m", "2", "--alias", "staging")
    assert staged.stdout == "m: staging -> 2 (new alias)\n"
    shown = run_cli("--root", root, "show", "m")
    assert "aliases: production -> 2, staging -> 2" in shown.stdout
    assert "earlier targets of production: 1" in shown.stdout

    rolled = run_cli("--root", root, "rollback", "m", "--alias", "production")
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout == "m: production -> 1 (rolled back from 2)\n"
    assert own.aliases("m") == {"production": 1, "staging": 2}

    before = snapshot(own.root)
    again = run_cli("--root", root, "rollback", "m", "--alias", "production")
    assert_one_line_error(again, 1, "nothing to roll back to")
    assert snapshot(own.root) == before


@pytest.mark.parametrize("args", [["verify"], ["verify", "m"]])
def test_verify_names_a_tampered_model(own, args):
    own.model_path("m", 2).write_bytes(b"tampered")
    result = run_cli("--root", str(own.root), *args)
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED m version 2: model.onnx has sha256")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["list"], ["show", "m"], ["show", "m:1"], ["verify"],
                                     ["promote", "m", "1", "--alias", "production"]])  # fmt: skip
def test_missing_registry_folder(tmp_path, command):
    missing = tmp_path / "no-such-registry"
    result = run_cli("--root", str(missing), *command)
    assert_one_line_error(result, 1, f"registry folder does not exist (registry {missing})")
    assert not missing.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "../m"], "invalid model name '../m'"),
        (["show", "M"], "invalid model name 'M'"),
        (["show", "a/b:1"], "invalid model name 'a/b'"),
        (["show", ":1"], "invalid model name ''"),
        (["show", "m:01"], "invalid version '01'"),
        (["show", "m:-1"], "invalid version '-1'"),
        (["show", "m:x"], "invalid version 'x'"),
        (["show", "m:"], "invalid version ''"),
        (["promote", "m", "0", "--alias", "production"], "invalid version '0'"),
        (["promote", "m", "1", "--alias", "Prod"], "invalid alias name 'Prod'"),
        (["rollback", "m", "--alias", ".."], "invalid alias name '..'"),
        (["verify", "x" * 65], "invalid model name"),
    ],
)
def test_invalid_names_and_versions(shared, args, message):
    before = snapshot(shared.root)
    assert_one_line_error(run_cli("--root", str(shared.root), *args), 2, message)
    assert snapshot(shared.root) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "other"], "no model named 'other'"),
        (["show", "m:9"], "no version 9"),
        (["verify", "other"], "no model named 'other'"),
        (["promote", "m", "9", "--alias", "production"], "no version 9"),
        (["rollback", "m", "--alias", "staging"], "no alias 'staging'"),
    ],
)
def test_unknown_models_versions_and_aliases(shared, args, message):
    before = snapshot(shared.root)
    assert_one_line_error(run_cli("--root", str(shared.root), *args), 1, message)
    assert snapshot(shared.root) == before


def test_usage_errors_exit_2(shared):
    result = run_cli("--root", str(shared.root))
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_promote_refuses_a_version_that_does_not_load(own, tmp_path):
    """Issue 12.1: the CLI once pointed production at a file onnxruntime cannot load."""
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model, but its sha256 matches its card")
    version = own.register("m", garbage, {})
    before = snapshot(own.root)
    result = run_cli("--root", str(own.root), "promote", "m", str(version), "--alias", "production")
    assert_one_line_error(result, 1, "onnxruntime cannot load the model")
    assert snapshot(own.root) == before


def test_rollback_when_the_current_target_is_gone(own):
    promoted = run_cli("--root", str(own.root), "promote", "m", "2", "--alias", "production")
    assert promoted.returncode == 0, promoted.stderr
    shutil.rmtree(own.version_dir("m", 2))
    rolled = run_cli("--root", str(own.root), "rollback", "m", "--alias", "production")
    assert rolled.stdout == "m: production -> 1 (rolled back from 2)\n", rolled.stderr


def test_a_canary_from_the_command_line(own):
    result = run_cli("--root", str(own.root), "canary", "m", "2", "--alias", "production",
                     "--weight", "10")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "m: production sends 10% to version 2\n"
    assert own.canaries("m") == {"production": {"version": 2, "weight": 10}}
    shown = run_cli("--root", str(own.root), "show", "m").stdout.splitlines()
    assert shown[-1] == "canary of production: version 2 at 10%"
    ended = run_cli("--root", str(own.root), "canary", "m", "--alias", "production", "--end")
    assert ended.stdout == "m: canary of production ended\n"
    assert own.canaries("m") == {}
    assert own.alias_log("m")[-1]["action"] == "canary_end"


def test_a_shadow_from_the_command_line(own):
    root = ("--root", str(own.root))
    result = run_cli(*root, "shadow", "m", "2", "--alias", "production")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "m: version 2 shadows production\n"
    assert own.shadows("m") == {"production": 2}
    assert run_cli(*root, "show", "m").stdout.splitlines()[-1] == "shadow of production: version 2"
    ended = run_cli(*root, "shadow", "m", "--alias", "production", "--end")
    assert ended.stdout == "m: shadow of production stopped\n"
    assert own.alias_log("m")[-1]["action"] == "shadow_end"
    refused = run_cli(*root, "shadow", "m", "1", "--alias", "production")
    assert_one_line_error(refused, 2, "already serves")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("2", "--alias", "production"), "--weight"),
        (("2", "--alias", "production", "--weight", "100"), "whole percent"),
        (("1", "--alias", "production", "--weight", "10"), "already serves"),
    ],
)
def test_bad_canaries_from_the_command_line(shared, args, fragment):
    result = run_cli("--root", str(shared.root), "canary", "m", *args)
    assert_one_line_error(result, 2, fragment)
    assert shared.canaries("m") == {}


def test_a_rollout_from_the_command_line(own):
    root = ("--root", str(own.root))
    started = run_cli(*root, "rollout", "start", "m", "2", "--steps", "10,100", "--interval", "1h")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["status"] == "running"
    assert own.canaries("m") == {"production": {"version": 2, "weight": 10}}
    stepped = json.loads(run_cli(*root, "rollout", "step", "m").stdout)
    assert stepped["step"] == 0  # an hour to go
    assert json.loads(run_cli(*root, "rollout", "status", "m").stdout)["candidate"] == 2
    aborted = run_cli(*root, "rollout", "abort", "m")
    assert json.loads(aborted.stdout)["status"] == "aborted"
    assert own.canaries("m") == {}
    again = run_cli(*root, "rollout", "abort", "m")
    assert_one_line_error(again, 2, "no rollout running")
    bad = run_cli(*root, "rollout", "start", "m", "2", "--steps", "50,10")
    assert_one_line_error(bad, 2, "steps")
