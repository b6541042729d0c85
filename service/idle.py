"""Whether this process's event loop is idle: background work (a shadow) waits for it.

The event-loop worker (service/gunicorn_worker.py) opens the gate when nothing is ready and it is
about to wait in select, and closes it as soon as events or requests are ready. A background
thread waits on the gate before it takes work, so a busy loop wakes no thread and its copies are
dropped instead of taking CPU from answers (bench/README.md measured it). Under another worker
(gthread) nothing closes the gate: it stays open, and background work runs as before.
"""

import threading


class IdleGate:
    """Open while the process's loop has nothing to do; background work waits for it."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()

    def idle(self) -> None:
        """The loop has nothing ready and waits for events."""
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
