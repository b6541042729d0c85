"""Observers: every one hears each event, and a failing one never reaches the caller."""

import numpy as np

from service.events import Observers
from tests.fake_observers import FakeBroken, FakeRecorder


def test_every_observer_hears_the_event_even_after_one_fails(caplog):
    first, second = FakeRecorder(), FakeRecorder()
    observers = Observers([first, FakeBroken(), second])
    observers.on_result("m", 3, np.array([1, 7]))
    assert first.events == second.events == [("result", "m", 3, [1, 7])]
    assert "failed" in caplog.text
