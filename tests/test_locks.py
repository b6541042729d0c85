"""requirements/*.lock agree with the top-level pins in requirements/*.txt and with each other.

A pin added to a .txt file without `make lock` fails here, offline, before anything ships.
"""

import re
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"
# Each lock and the top-level files it is compiled from (the Makefile's `lock` target).
SETS = {
    "serve": ("serve",),
    "train": ("serve", "train"),
    "test": ("serve", "train", "test", "lint"),
    "lint": ("lint",),
}
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)")


def pins(path: Path) -> dict[str, str]:
    """name → version of every top-level `name==version` line (comments and `# via` skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        if match := PIN.fullmatch(line.split("#")[0].strip()):
            found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


@pytest.mark.parametrize("lock", SETS)
def test_every_top_level_pin_is_locked_at_its_version(lock):
    locked = pins(REQUIREMENTS / f"{lock}.lock")
    wanted = {}
    for source in SETS[lock]:
        wanted.update(pins(REQUIREMENTS / f"{source}.txt"))
    assert wanted
    stale = {name: (version, locked.get(name)) for name, version in wanted.items()
             if locked.get(name) != version}  # fmt: skip
    assert stale == {}, "requirements changed: run `make lock`"


@pytest.mark.parametrize("lock", ["serve", "train", "lint"])
def test_what_ships_is_what_was_tested(lock):
    tested = pins(REQUIREMENTS / "test.lock")
    smaller = pins(REQUIREMENTS / f"{lock}.lock")
    assert {name: tested.get(name) for name in smaller} == smaller
