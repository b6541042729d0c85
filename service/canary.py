"""Canary routing: which of an alias's two versions answers a request, sticky per client key.

The choice hashes (model, alias, key) with a fixed function, so every worker and every replica
sends one key to the same version without sharing any state; a request without a key is placed
at random. Raising the weight only moves keys from the target to the candidate, never back, so
a client stays on the candidate through every step of a rollout.
"""

import hashlib
import random
from dataclasses import dataclass

from service.loader import LoadedModel

BUCKETS = 10_000  # hundredths of a percent


@dataclass(frozen=True)
class Canary:
    """A loaded candidate version and its share of the alias's traffic, in whole percent."""

    model: LoadedModel
    weight: int


def bucket(name: str, alias: str, key: str | None) -> int:
    """Where a request falls in 0..BUCKETS-1: stable for a key, random without one."""
    if key is None:
        return random.randrange(BUCKETS)  # noqa: S311  # routing, not security
    digest = hashlib.blake2b(f"{name}\0{alias}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def choose(
    name: str, alias: str, key: str | None, target: LoadedModel, canary: Canary
) -> LoadedModel:
    """The candidate for the first weight % of buckets, the alias's target for the rest."""
    return canary.model if bucket(name, alias, key) < canary.weight * 100 else target
