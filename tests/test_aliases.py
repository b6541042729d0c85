"""Following aliases over a real registry: last-good fallback, degraded readiness, refusals."""

import logging
import shutil
from dataclasses import replace

import pytest

from service.core import Core
from service.errors import AliasNotFound, IntegrityError, NoAliasHistory, NotReady
from service.registry import Registry
from tests.conftest import MODEL
from tests.tiny_models import register_tiny
from tests.waiting import wait_for


def corrupt(registry: Registry, version: int) -> None:
    path = registry.model_path(MODEL, version)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")


def delete(registry: Registry, version: int) -> None:
    shutil.rmtree(registry.version_dir(MODEL, version))


def write_bad_aliases(registry: Registry, version: int) -> None:
    (registry.root / MODEL / "aliases.json").write_text('{"production": ')


BREAK = {"corrupt": corrupt, "missing": delete, "bad aliases.json": write_bad_aliases}


@pytest.fixture
def promoted(registry: Registry) -> Registry:
    """production moved 1 → 2, so its history holds version 1."""
    registry.set_alias(MODEL, "production", 2)
    return registry


def started(settings) -> Core:
    core = Core(settings)
    core.start()
    return core


@pytest.mark.parametrize("fault", BREAK)
def test_a_new_worker_serves_the_last_good_version_and_says_degraded(promoted, settings, fault):
    """Issue 12.1: a worker started after the fault once answered 503 to everything."""
    BREAK[fault](promoted, 2)
    core = started(settings)
    try:
        assert core.is_ready()
        loaded, alias = core.data_plane.model()
        assert (loaded.version, alias) == (1, "production")
        status = core.status()
        assert status["status"] == "degraded"
        assert status["serving"] == [
            {"model": MODEL, "alias": "production", "version": 1, "degraded": True}
        ]
        (refusal,) = status["refused"]
        assert refusal["alias"] == "production"
        assert str(promoted.root) not in refusal["reason"]
    finally:
        core.close()


def test_a_running_worker_keeps_its_verified_copy_when_the_target_vanishes(promoted, settings):
    core = started(settings)
    try:
        assert core.data_plane.model()[0].version == 2
        delete(promoted, 2)
        wait_for(lambda: core.status()["status"] == "degraded")
        assert core.data_plane.model()[0].version == 2  # the copy verified at load answers on
        (refusal,) = core.status()["refused"]
        assert "serving the copy verified when it was loaded" in refusal["reason"]
    finally:
        core.close()


def test_nothing_to_serve_is_decided_once_not_per_request(registry, settings, tmp_path, caplog):
    """Issue 12.1: a worker re-read and re-hashed model.onnx on every request, logging each."""
    version = register_tiny(registry, MODEL, 3, tmp_path)
    registry.set_alias(MODEL, "canary", version)
    corrupt(registry, version)
    core = started(settings)
    try:
        with caplog.at_level(logging.INFO, logger="fashion_serve"):
            for _ in range(50):
                with pytest.raises(NotReady, match="sha256"):
                    core.data_plane.model(alias="canary")
        refusals = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(refusals) == 1, [r.getMessage() for r in refusals]
        assert "canary" in refusals[0].getMessage()
    finally:
        core.close()


def test_a_repaired_target_is_served_again(promoted, settings, tmp_path):
    path = promoted.model_path(MODEL, 2)
    good = path.read_bytes()
    corrupt(promoted, 2)
    core = started(settings)
    try:
        assert core.data_plane.model()[0].version == 1
        path.write_bytes(good)
        wait_for(lambda: core.data_plane.model()[0].version == 2)
        assert core.status()["status"] == "ready"
        assert core.status()["refused"] == []
    finally:
        core.close()


def test_api_rollback_works_when_the_current_target_is_missing(promoted, settings):
    """Issue 12.2: DELETE …/aliases/production answered 404 once production's target was gone."""
    core = started(settings)
    try:
        delete(promoted, 2)
        moved = core.registry_view.rollback(MODEL, "production")
        assert moved == {"model": MODEL, "alias": "production", "version": 1, "previous": 2}
        assert core.data_plane.model()[0].version == 1
        assert core.status()["status"] == "ready"
    finally:
        core.close()


def test_promotion_through_the_api_refuses_a_version_that_does_not_verify(
    registry, settings, tmp_path
):
    version = register_tiny(registry, MODEL, 3, tmp_path)
    corrupt(registry, version)
    core = started(settings)
    try:
        with pytest.raises(IntegrityError):
            core.registry_view.set_alias(MODEL, "production", version)
        assert registry.aliases(MODEL)["production"] == 1
        assert core.status()["status"] == "ready"
    finally:
        core.close()


def test_an_alias_moved_by_another_process_is_followed_without_restart(registry, settings):
    core = started(settings)
    try:
        Registry(settings.model_dir).set_alias(MODEL, "production", 2)  # as the CLI would
        wait_for(lambda: core.data_plane.model()[0].version == 2, "production to serve version 2")
        assert core.status()["refused"] == []
    finally:
        core.close()


def test_an_alias_is_followed_from_its_first_use(settings):
    core = started(settings)
    try:
        assert core.data_plane.model(alias="staging")[0].version == 2
        serving = {(s["alias"], s["version"]) for s in core.status()["serving"]}
        assert serving == {("production", 1), ("staging", 2)}
        with pytest.raises(AliasNotFound):
            core.data_plane.model(alias="canary")
    finally:
        core.close()


def test_set_alias_then_rollback_switch_immediately(settings):
    core = started(settings)
    try:
        moved = core.registry_view.set_alias(MODEL, "production", 2)
        assert moved == {"model": MODEL, "alias": "production", "version": 2, "previous": 1}
        assert core.data_plane.model()[0].version == 2
        back = core.registry_view.rollback(MODEL, "production")
        assert (back["version"], back["previous"]) == (1, 2)
        assert core.data_plane.model()[0].version == 1
        with pytest.raises(NoAliasHistory):
            core.registry_view.rollback(MODEL, "production")
    finally:
        core.close()


def test_an_empty_registry_is_not_ready_until_a_model_is_promoted(settings, tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    core = started(replace(settings, model_dir=root))
    try:
        assert not core.is_ready()
        assert core.status()["refused"]
        with pytest.raises(NotReady, match="has no version to serve"):
            core.data_plane.model()
        registry = Registry(root)
        register_tiny(registry, MODEL, 5, tmp_path)
        registry.set_alias(MODEL, "production", 1)
        wait_for(core.is_ready, "readiness")
    finally:
        core.close()
