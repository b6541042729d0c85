"""training.drawn pointed at the tiny committed icon fixture: four packages, two T-shirts, so a
test builds the drawn pictures without npm."""

import shutil
from pathlib import Path

import pytest

from training import drawn

FIXTURE = Path(__file__).parent / "fixtures" / "drawn"


def use_drawn_fixture(monkeypatch: pytest.MonkeyPatch, cache: Path, texts: int) -> None:
    """Copy the fixture's packages into cache and limit training.drawn to them."""
    shutil.copytree(FIXTURE / "packages", cache / "packages")
    names = sorted(path.name for path in (FIXTURE / "packages").iterdir())
    monkeypatch.setattr(drawn, "PACKAGES", {name: drawn.PACKAGES[name] for name in names})
    monkeypatch.setattr(drawn, "OUTLIERS_PER_PACKAGE", dict.fromkeys(names, 100))
    monkeypatch.setattr(drawn, "CLOTHING", FIXTURE / "clothing.csv")
    monkeypatch.setattr(drawn, "TEXTS", texts)
