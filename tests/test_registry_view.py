"""The registry view: model lists, summaries and cards."""

import pytest

from service.errors import InvalidName, VersionNotFound
from tests.conftest import MODEL


def test_model_list_summary_and_card(service, registry):
    assert service.registry_view.list_models() == [
        {"name": MODEL, "versions": [1, 2], "aliases": {"production": 1, "staging": 2},
         "default": True}
    ]  # fmt: skip
    summary = service.registry_view.describe_model(MODEL)
    assert [v["version"] for v in summary["versions"]] == [1, 2]
    assert summary["aliases"] == registry.aliases(MODEL)
    assert summary["alias_history"] == {}
    card = service.registry_view.version_card(MODEL, 2)
    assert card["sha256"] == registry.card(MODEL, 2)["sha256"]
    assert card["serving"]["loaded"] is False
    assert card["serving"]["providers"] == service.providers
    assert (
        service.registry_view.versions(MODEL) == service.registry_view.versions(MODEL, 2) == [1, 2]
    )
    with pytest.raises(VersionNotFound):
        service.registry_view.versions(MODEL, 3)
    with pytest.raises(InvalidName):
        service.registry_view.describe_model("../x")
