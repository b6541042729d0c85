"""Work a process does in its event loop's idle moments: a shadow's comparisons.

The event-loop worker (service/gunicorn_worker.py) drives the process's loop: whenever nothing is
ready and it is about to wait in select, it runs the registered tasks a step at a time and looks
for events between steps. Work done there takes the GIL from no request and wakes no thread: a
request that arrives meanwhile waits for one step at most (bench/README.md measured a thread
doing it instead, and the tail it cost). Under another worker (gthread) nothing drives the loop
and the work's own thread does it.
"""

from collections.abc import Callable

# One step of background work: True if it did something (the loop then looks for events and
# may run another), False if it had nothing to do or may not do more now.
Task = Callable[[], bool]


class IdleLoop:
    """The tasks a process's event loop runs when it has nothing else to do."""

    def __init__(self) -> None:
        self.driven = False  # an event loop runs the tasks (else their threads do)
        self._tasks: list[Task] = []

    def drive(self) -> None:
        """The process's event loop will run the tasks from now on."""
        self.driven = True

    def add(self, task: Task) -> None:
        self._tasks.append(task)

    def remove(self, task: Task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    def step(self) -> bool:
        """One step of the first task with something to do; False when none had anything."""
        return any(task() for task in list(self._tasks))


# The one loop of this process (a gunicorn worker serves from one process).
LOOP = IdleLoop()
