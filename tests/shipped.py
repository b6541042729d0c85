"""The repository's registry, copied for a test without what serving it leaves behind.

A registry that has been served (`make serve`, a bench) gains live journals in `.live/`; a test
that copied them would count another run's answers, feedback and captures as its own.
"""

import shutil
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[1] / "models"


def copy_shipped(destination: Path) -> Path:
    """Copy the shipped registry to destination (which must not exist), without `.live/`."""
    shutil.copytree(SHIPPED, destination, ignore=shutil.ignore_patterns(".live"))
    return destination
