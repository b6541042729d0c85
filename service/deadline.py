"""A request's time budget, which the core checks between the steps of its work."""

import math
import time

from service.errors import DeadlineExceeded


class Deadline:
    """When a request's work must stop: checked between images and between model runs.

    Nothing is interrupted: a step in progress ends, and the next check raises a typed error,
    so the request gets a clean answer and the worker stays alive to serve the next one.
    """

    __slots__ = ("ends", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds if seconds > 0 else math.inf  # 0: no budget

    def check(self) -> None:
        """Raise DeadlineExceeded once the budget is spent."""
        if time.monotonic() > self.ends:
            raise DeadlineExceeded(
                f"the request needed more than its {self.seconds:g} s of work and was stopped;"
                " send fewer or smaller images per request"
            )


NO_DEADLINE = Deadline(0)
