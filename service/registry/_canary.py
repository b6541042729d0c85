"""Canaries of aliases and the alias log: their file formats, checked before anything is written.

A canary sends a share of an alias's traffic to a second version. It lives in its own file
(canaries.json) rather than in aliases.json, so every existing aliases.json stays valid and a
process that knows nothing of canaries still reads the registry.
"""

import time
from typing import Any

from service.contract import is_version
from service.errors import BadRequest

# Whole percent: a canary below 1 % is too small to judge, and 100 % is a promotion.
MIN_WEIGHT, MAX_WEIGHT = 1, 99
# Entries kept in the alias log: moves are rare, but the file must not grow forever.
LOG_LIMIT = 500


def check_weight(weight: object) -> int:
    """The candidate's share of the alias's traffic, in whole percent (BadRequest otherwise)."""
    if isinstance(weight, float) and weight.is_integer():
        weight = int(weight)
    if not is_version(weight) or not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise BadRequest(
            f"invalid canary weight {weight!r:.40}: a whole percent from {MIN_WEIGHT} to"
            f" {MAX_WEIGHT} (100 % is a promotion)"
        )
    return weight


def is_canary(value: object) -> bool:
    """True for a stored canary: {"version": N, "weight": W}."""
    return (
        isinstance(value, dict)
        and set(value) == {"version", "weight"}
        and is_version(value["version"])
        and is_version(value["weight"])
        and MIN_WEIGHT <= value["weight"] <= MAX_WEIGHT
    )


def log_entry(alias: str, action: str, **fields: Any) -> dict[str, Any]:
    """One alias move for the log: when, which alias, what happened, and its details."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"at": at, "alias": alias, "action": action, **fields}
