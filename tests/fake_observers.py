"""Observers of the core for tests: one that records every event, one that always fails."""

import numpy as np

from service.events import Observer


class FakeRecorder(Observer):
    """Records each event as (name, *args), in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_load(self, name: str, version: int, seconds: float) -> None:
        self.events.append(("load", name, version))

    def on_switch(self, name: str, alias: str, version: int) -> None:
        self.events.append(("switch", name, alias, version))

    def on_refusal(self, name: str, alias: str, version: int | None, reason: str) -> None:
        self.events.append(("refusal", name, alias, version))

    def on_result(self, name: str, version: int, classes: np.ndarray) -> None:
        self.events.append(("result", name, version, classes.tolist()))

    def of(self, kind: str) -> list[tuple]:
        """The recorded events of one kind, without the kind."""
        return [event[1:] for event in self.events if event[0] == kind]


class FakeBroken(Observer):
    """Raises on every event, as a buggy observer would."""

    def on_load(self, *args: object) -> None:
        raise RuntimeError("observer bug")

    on_switch = on_refusal = on_result = on_load
