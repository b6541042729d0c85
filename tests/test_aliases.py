"""The alias follower on a real registry: hot reload, refusals, readiness, promote and rollback."""

import threading
from dataclasses import replace

import pytest

from service.aliases import AliasFollower
from service.errors import AliasNotFound, IntegrityError, NoAliasHistory, NotReady
from service.events import Observers
from service.loader import Loader
from service.registry import Registry
from service.runtime import CPU
from tests.conftest import MODEL
from tests.fake_observers import FakeRecorder
from tests.tiny_models import register_tiny
from tests.waiting import wait_for


def make_follower(settings, recorder: FakeRecorder | None = None) -> AliasFollower:
    """A follower over a real loader, wired as InferenceService wires them."""
    registry = Registry(settings.model_dir)
    observers = Observers([recorder] if recorder else [])
    follower: AliasFollower
    loader = Loader(
        registry, settings, [CPU], observers, threading.RLock(), lambda: follower.pinned()
    )
    follower = AliasFollower(registry, settings, loader, observers)
    return follower


@pytest.fixture
def recorder() -> FakeRecorder:
    return FakeRecorder()


@pytest.fixture
def follower(settings, recorder):
    follower = make_follower(settings, recorder)
    follower.start()
    yield follower
    follower.close()


def production(follower: AliasFollower) -> int:
    return follower.get(MODEL, "production").version


def test_start_serves_the_default_alias_and_is_ready(follower, recorder):
    assert follower.is_ready()
    assert follower.serving() == [{"model": MODEL, "alias": "production", "version": 1}]
    assert follower.refusals() == []
    assert recorder.of("switch") == [(MODEL, "production", 1)]


def test_an_alias_is_followed_from_its_first_use(follower):
    assert follower.get(MODEL, "staging").version == 2
    assert {"model": MODEL, "alias": "staging", "version": 2} in follower.serving()
    with pytest.raises(AliasNotFound):
        follower.get(MODEL, "canary")


def test_an_alias_moved_by_another_process_is_followed_without_restart(follower, settings):
    Registry(settings.model_dir).set_alias(MODEL, "production", 2)  # as the CLI would
    wait_for(lambda: production(follower) == 2, "production to serve version 2")
    assert follower.refusals() == []


def test_a_corrupted_target_is_refused_once_and_the_old_one_serves_on(
    follower, settings, recorder, tmp_path
):
    outside = Registry(settings.model_dir)
    version = register_tiny(outside, MODEL, 3, tmp_path)
    model_file = outside.model_path(MODEL, version)
    model_file.write_bytes(model_file.read_bytes()[:-1] + b"\0")  # one flipped byte
    outside.set_alias(MODEL, "production", version)
    (refusal,) = wait_for(follower.refusals, "the refusal")
    assert refusal["version"] == version
    assert "sha256" in refusal["reason"]
    assert production(follower) == 1
    assert follower.is_ready()
    follower.refresh(force=True)  # looking again at the same broken target is not news
    assert recorder.of("refusal") == [(MODEL, "production", version)]


def test_set_alias_refuses_a_version_that_does_not_load(follower, settings, tmp_path):
    outside = Registry(settings.model_dir)
    version = register_tiny(outside, MODEL, 4, tmp_path)
    outside.model_path(MODEL, version).write_bytes(b"garbage")
    with pytest.raises(IntegrityError):
        follower.set_alias(MODEL, "production", version)
    assert outside.aliases(MODEL)["production"] == 1


def test_set_alias_then_rollback_switch_immediately(follower):
    moved = follower.set_alias(MODEL, "production", 2)
    assert moved == {"model": MODEL, "alias": "production", "version": 2, "previous": 1}
    assert production(follower) == 2
    back = follower.rollback(MODEL, "production")
    assert (back["version"], back["previous"]) == (1, 2)
    assert production(follower) == 1
    with pytest.raises(NoAliasHistory):
        follower.rollback(MODEL, "production")


def test_an_empty_registry_is_not_ready_until_a_model_is_promoted(settings, tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    follower = make_follower(replace(settings, model_dir=root))
    follower.start()
    try:
        assert not follower.is_ready()
        assert follower.refusals()
        with pytest.raises(NotReady, match="default model is not available"):
            follower.get(MODEL, "production")
        registry = Registry(root)
        register_tiny(registry, MODEL, 5, tmp_path)
        registry.set_alias(MODEL, "production", 1)
        wait_for(follower.is_ready, "readiness")
    finally:
        follower.close()
