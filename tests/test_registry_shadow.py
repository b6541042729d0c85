"""Shadows in the filesystem registry: shadows.json, checked like a promotion, logged."""

import pytest

from service.errors import AliasNotFound, BadRequest, IntegrityError, RegistryError
from service.registry import SHADOWS_FILE
from tests.conftest import MODEL


def test_a_shadow_is_stored_logged_and_stopped(registry):
    assert registry.shadows(MODEL) == {}
    assert registry.set_shadow(MODEL, "production", 2) is None
    assert registry.set_shadow(MODEL, "production", 2) == 2  # unchanged: not logged again
    assert registry.shadows(MODEL) == {"production": 2}
    assert registry.aliases(MODEL)["production"] == 1
    assert registry.clear_shadow(MODEL, "production", "test") == 2
    assert registry.clear_shadow(MODEL, "production", "test") is None
    actions = [(e["action"], e["version"]) for e in registry.alias_log(MODEL)[-2:]]
    assert actions == [("shadow", 2), ("shadow_end", 2)]
    assert registry.verify(MODEL) == []


def test_promoting_the_shadow_stops_it(registry):
    registry.set_shadow(MODEL, "production", 2)
    registry.set_alias(MODEL, "production", 2)
    assert registry.shadows(MODEL) == {}
    last = registry.alias_log(MODEL)[-1]
    assert (last["action"], last["reason"]) == ("shadow_end", "promoted")


@pytest.mark.parametrize(
    ("alias", "version", "error"),
    [
        ("production", 1, BadRequest),  # the alias's own target
        ("nightly", 2, AliasNotFound),
        ("Bad!", 2, ValueError),
    ],
)
def test_bad_shadows_are_refused_before_anything_is_written(registry, alias, version, error):
    with pytest.raises(error):
        registry.set_shadow(MODEL, alias, version)
    assert not (registry.root / MODEL / SHADOWS_FILE).exists()


def test_a_corrupt_shadow_is_refused(registry):
    registry.model_path(MODEL, 2).write_bytes(b"not the model the card names")
    with pytest.raises(IntegrityError):
        registry.set_shadow(MODEL, "production", 2)
    assert registry.shadows(MODEL) == {}


def test_a_broken_shadows_file_is_reported(registry):
    (registry.root / MODEL / SHADOWS_FILE).write_text('{"production": "two"}')
    with pytest.raises(RegistryError):
        registry.shadows(MODEL)
    assert any("shadows.json" in problem for problem in registry.verify(MODEL))
