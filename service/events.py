"""What the core tells its observers (metrics, ...): loads, alias switches, refusals, results,
failures."""

import logging
from collections.abc import Callable
from typing import Protocol

import numpy as np

log = logging.getLogger("fashion_serve")


class Observer(Protocol):
    """An observer of the core. The bodies do nothing: a subclass overrides the calls it needs.

    Calls must be fast and must not raise: the core logs and ignores anything they do. The
    bodies return explicitly: a bare docstring would make them abstract to a type checker.
    """

    def on_load(self, name: str, version: int, seconds: float) -> None:
        """A version was loaded, verified and warmed up in this process."""
        return None

    def on_switch(self, name: str, alias: str, version: int) -> None:
        """An alias now answers with this version in this process."""
        return None

    def on_refusal(self, name: str, alias: str, version: int | None, reason: str) -> None:
        """An alias's target was refused (missing, corrupt, unloadable); the old one serves on."""
        return None

    def on_degraded(self, name: str, alias: str, degraded: bool) -> None:
        """An alias stopped (True) or went back to (False) answering with its verified target."""
        return None

    def on_result(self, name: str, version: int, classes: np.ndarray) -> None:
        """A batch was classified: the predicted class id of each image."""
        return None

    def on_flagged(self, name: str, version: int, count: int) -> None:
        """``count`` images of a batch were judged not in distribution by this version."""
        return None

    def on_failure(self, name: str, version: int, reason: str) -> None:
        """A version failed to classify a batch (the request got an error, not an answer)."""
        return None


class Observers(list[Observer]):
    """The observers of one core, shared by its loader, alias follower and data plane.

    It is an Observer itself: each call reaches every observer, and one observer's failure
    never reaches the caller.
    """

    def on_load(self, name: str, version: int, seconds: float) -> None:
        self._each(lambda observer: observer.on_load(name, version, seconds))

    def on_switch(self, name: str, alias: str, version: int) -> None:
        self._each(lambda observer: observer.on_switch(name, alias, version))

    def on_refusal(self, name: str, alias: str, version: int | None, reason: str) -> None:
        self._each(lambda observer: observer.on_refusal(name, alias, version, reason))

    def on_degraded(self, name: str, alias: str, degraded: bool) -> None:
        self._each(lambda observer: observer.on_degraded(name, alias, degraded))

    def on_result(self, name: str, version: int, classes: np.ndarray) -> None:
        self._each(lambda observer: observer.on_result(name, version, classes))

    def on_flagged(self, name: str, version: int, count: int) -> None:
        self._each(lambda observer: observer.on_flagged(name, version, count))

    def on_failure(self, name: str, version: int, reason: str) -> None:
        self._each(lambda observer: observer.on_failure(name, version, reason))

    def _each(self, call: Callable[[Observer], None]) -> None:
        for observer in self:
            try:
                call(observer)
            except Exception:  # an observer's bug must never stop a load, a switch or a prediction
                log.exception("observer %r failed", observer)
