"""What the core tells observers (metrics, ...): loads, alias switches, refusals, results."""

import logging

import numpy as np

log = logging.getLogger("fashion_serve")


class Events:
    """An observer of the core; override the calls of interest, keep them fast.

    An observer must not raise: the core logs and ignores anything it does, serving goes on.
    """

    def on_load(self, name: str, version: int, seconds: float) -> None:
        """A version was loaded, verified and warmed up in this process."""

    def on_switch(self, name: str, alias: str, version: int) -> None:
        """An alias now answers with this version in this process."""

    def on_refusal(self, name: str, alias: str, version: int | None, reason: str) -> None:
        """An alias's target was refused (missing, corrupt, unloadable); the old one serves on."""

    def on_degraded(self, name: str, alias: str, degraded: bool) -> None:
        """An alias stopped (True) or went back to (False) answering with its verified target."""

    def on_result(self, name: str, version: int, classes: np.ndarray) -> None:
        """A batch was classified: the predicted class id of each image."""


class Observers(list[Events]):
    """The observers of one core, shared by its loader, alias follower and data plane."""

    def notify(self, event: str, *args: object) -> None:
        """Call ``event`` on every observer; one observer's failure never reaches the caller."""
        for observer in self:
            try:
                getattr(observer, event)(*args)
            except Exception:  # an observer's bug must never stop a load, a switch or a prediction
                log.exception("observer %r failed on %s", observer, event)
