"""Whether this process's event loop is idle: background work (a shadow) waits for it.

The event-loop worker (service/gunicorn_worker.py) opens the gate once it has waited IDLE_SPELL
in select with nothing to do, and closes it as soon as events or requests are ready. The short
gaps between a busy worker's requests never open it (the other worker and the clients need those
cores), and a closed gate wakes no thread: under load, copies are dropped instead of taking CPU
from answers (bench/README.md measured it). Under another worker (gthread) nothing closes the
gate: it stays open, and background work runs as before.
"""

import threading

IDLE_SPELL = 0.0005  # seconds of nothing to do before the loop counts as idle


class IdleGate:
    """Open while the process's loop has nothing to do; background work waits for it."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()

    def idle(self) -> None:
        """The loop has had nothing to do for IDLE_SPELL and waits for events."""
        if not self._open.is_set():
            self._open.set()

    def busy(self) -> None:
        """The loop has events or requests to handle."""
        if self._open.is_set():
            self._open.clear()

    def wait(self, timeout: float) -> bool:
        """True once the loop is idle; False if it stayed busy for timeout seconds."""
        return self._open.wait(timeout)


# The one loop of this process (a gunicorn worker serves from one process).
GATE = IdleGate()
