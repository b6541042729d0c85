"""The registry over HTTP when it is damaged: rollback, free-form cards, messages, names."""

import json
import shutil

import pytest

from tests.conftest import MODEL

ADMIN = {"Authorization": "Bearer s3cret-token"}


def test_delete_rolls_back_when_the_current_target_is_gone(client, registry):
    """Issue 12.2: DELETE …/aliases/production answered 404 once its target was deleted."""
    moved = client.put(f"/models/{MODEL}/aliases/production", json={"version": 2}, headers=ADMIN)
    assert moved.status_code == 200
    shutil.rmtree(registry.version_dir(MODEL, 2))
    response = client.delete(f"/models/{MODEL}/aliases/production", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "model": MODEL, "alias": "production", "version": 1, "previous": 2
    }  # fmt: skip


def test_a_card_with_null_metrics_is_shown(client, registry):
    """Issue 12.6: /models/<name> answered 500 when a card's metrics was null."""
    card_path = registry.version_dir(MODEL, 2) / "model.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "metrics": None}))
    response = client.get(f"/models/{MODEL}")
    assert response.status_code == 200
    assert response.get_json()["versions"][1]["test_accuracy"] is None


def test_errors_never_show_server_paths(client, registry):
    """Issue 12.6: error bodies showed the registry's absolute path to anonymous clients."""
    (registry.root / MODEL / "aliases.json").write_text("{broken")
    for response in (client.get(f"/models/{MODEL}"), client.get("/models/nope")):
        text = response.get_data(as_text=True)
        assert response.status_code in (404, 503), text
        assert str(registry.root) not in text
    assert (
        "fashion-mnist/aliases.json"
        in client.get(f"/models/{MODEL}").get_json()["error"]["message"]
    )


@pytest.mark.parametrize("alias", ["0", "1e3"])
def test_aliases_that_look_like_numbers_are_refused(client, alias):
    response = client.put(f"/models/{MODEL}/aliases/{alias}", json={"version": 2}, headers=ADMIN)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_name"


def test_the_version_endpoint_shows_the_provider_options(client):
    serving = client.get(f"/models/{MODEL}/versions/1").get_json()["serving"]
    assert serving["provider_options"] == {"CPUExecutionProvider": {}}
