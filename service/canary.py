"""Canary routing: which of an alias's two versions answers a request, sticky per client key.

A fixed hash of (model, alias, key) sends one key to the same version in every worker and replica
without shared state (no key: at random); raising the weight only moves keys to the candidate,
so a client stays on it through every step of a rollout.
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
