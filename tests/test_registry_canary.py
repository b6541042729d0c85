"""Canaries in the filesystem registry: canaries.json, the alias log, and older files kept valid."""

import json
from pathlib import Path

import pytest

from service.errors import AliasNotFound, BadRequest, IntegrityError, RegistryError
from service.registry import CANARIES_FILE, LOG_FILE, Registry
from tests.conftest import MODEL
from tests.shipped import copy_shipped

REPO = Path(__file__).resolve().parents[1]


def test_a_canary_is_stored_logged_and_ended(registry):
    assert registry.canaries(MODEL) == {}
    assert registry.set_canary(MODEL, "production", 2, 10) is None
    assert registry.canaries(MODEL) == {"production": {"version": 2, "weight": 10}}
    assert registry.aliases(MODEL)["production"] == 1  # the target does not move
    assert registry.set_canary(MODEL, "production", 2, 50) == {"version": 2, "weight": 10}
    assert registry.clear_canary(MODEL, "production", "test") == {"version": 2, "weight": 50}
    assert registry.clear_canary(MODEL, "production", "test") is None
    actions = [(e["action"], e["version"]) for e in registry.alias_log(MODEL)]
    # The fixture's two promotions are logged too.
    assert actions == [
        ("promote", 1), ("promote", 2), ("canary", 2), ("canary", 2), ("canary_end", 2),
    ]  # fmt: skip
    assert registry.verify(MODEL) == []


def test_promoting_the_candidate_ends_its_canary(registry):
    registry.set_canary(MODEL, "production", 2, 10)
    registry.set_alias(MODEL, "production", 2)
    assert registry.canaries(MODEL) == {}
    last = registry.alias_log(MODEL)[-1]
    assert (last["action"], last["reason"]) == ("canary_end", "promoted")


@pytest.mark.parametrize(
    ("alias", "version", "weight", "error"),
    [
        ("production", 2, 0, BadRequest),
        ("production", 2, 100, BadRequest),
        ("production", 2, 12.5, BadRequest),
        ("production", 2, True, BadRequest),
        ("production", 1, 10, BadRequest),  # the alias's own target
        ("nightly", 2, 10, AliasNotFound),
    ],
)
def test_bad_canaries_are_refused_before_anything_is_written(
    registry, alias, version, weight, error
):
    with pytest.raises(error):
        registry.set_canary(MODEL, alias, version, weight)
    assert not (registry.root / MODEL / CANARIES_FILE).exists()


def test_a_corrupt_candidate_is_refused(registry):
    (registry.model_path(MODEL, 2)).write_bytes(b"not the model the card names")
    with pytest.raises(IntegrityError):
        registry.set_canary(MODEL, "production", 2, 10)
    assert registry.canaries(MODEL) == {}


@pytest.mark.parametrize(
    "content",
    [
        '{"production": 2}',
        '{"production": {"version": 2, "weight": 100}}',
        '{"production": {"version": 2}}',
        "[1]",
    ],
)
def test_a_malformed_canaries_file_is_a_registry_error(registry, content):
    (registry.root / MODEL / CANARIES_FILE).write_text(content)
    with pytest.raises(RegistryError):
        registry.canaries(MODEL)
    assert any("canaries.json" in problem for problem in registry.verify(MODEL))


def test_a_canary_of_a_missing_version_is_reported(registry):
    (registry.root / MODEL / CANARIES_FILE).write_text(
        json.dumps({"production": {"version": 9, "weight": 10}})
    )
    assert registry.verify(MODEL) == [
        f"{MODEL}: the canary of alias 'production' is version 9, which does not exist"
    ]


def test_the_shipped_registry_reads_as_before(tmp_path):
    """Files written before canaries existed (no canaries.json, no alias_log.json) stay valid."""
    root = tmp_path / "models"
    copy_shipped(root)
    registry = Registry(root)
    name = registry.models()[0]
    (root / name / LOG_FILE).unlink()  # the shipped log began with version 6's promotion
    assert not (root / name / CANARIES_FILE).exists()
    assert registry.canaries(name) == {}
    assert registry.alias_log(name) == []
    assert registry.verify() == []
    registry.set_canary(name, "production", 1, 10)
    # aliases.json and alias_history.json keep their old shape: older readers still read them.
    assert json.loads((root / name / "aliases.json").read_text()) == registry.aliases(name)
    assert all(isinstance(v, int) for v in registry.aliases(name).values())
    assert registry.verify() == []
