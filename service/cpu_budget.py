"""A budget of CPU seconds for background work, earned by the serving and forfeited by waiting.

Background work (a shadow's comparisons) may spend a share of the CPU the process spends on
everything else: a token bucket of CPU seconds, refilled by that share of the process's other
CPU seconds, less the time its main thread waited for a CPU meanwhile. A budget of wall-clock
time bounded nothing where the serving fills a container's CPU quota while the loop is idle
between requests; a share of the CPU alone still took its CPU from requests waiting for it (on
the swarm under load, bench/README.md). Only a process that ran whenever it was ready, on CPUs
with room, earns its full share.
"""

import time
from collections.abc import Callable

Clock = Callable[[], float]


def waited_for_cpu() -> float:
    """Seconds the process's main thread has been ready to run but waiting for a CPU (a
    container's throttled quota included), from the kernel's scheduler statistics; 0 where
    the kernel keeps none."""
    try:
        with open("/proc/self/schedstat", "rb") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuBudget:
    """CPU seconds the background work may spend: ``share`` of the process's other CPU time,
    less its waits for a CPU, at most ``burst`` at once."""

    def __init__(
        self,
        share: float,
        burst: float,
        cpu: Clock = time.process_time,
        waited: Clock = waited_for_cpu,
    ) -> None:
        self.share, self.burst = share, burst
        self._cpu, self._waited_clock = cpu, waited
        self.seconds = burst  # the bucket ...
        self._filled_at = cpu()  # ... as of this much of the process's CPU,
        self._waited = waited()  # ... this much time waited for a CPU,
        self._own = 0.0  # ... and the background work's CPU seconds since
        # Nothing may be spent before the process's CPU reaches it (None: not dry).
        self._resume_at: float | None = None

    def spent(self) -> bool:
        """Whether the bucket is known dry (a clock read: cheap enough for the request path)."""
        return self._resume_at is not None and self._cpu() < self._resume_at

    def refill(self) -> bool:
        """Add the share of the process's CPU seconds since the last fill, less the background
        work's own and less the time waited for a CPU meanwhile; True if there is any to spend.

        A process waiting for a CPU shares it with requests (its own or its neighbours'), and
        the background work would delay them: it earns nothing for that while."""
        now, waited = self._cpu(), self._waited_clock()
        served = now - self._filled_at - self._own - (waited - self._waited)
        self.seconds = min(self.burst, self.seconds + max(0.0, served) * self.share)
        self._filled_at, self._waited, self._own = now, waited, 0.0
        self._pause_if_dry(now)
        return self._resume_at is None

    def charge(self, seconds: float) -> None:
        """Take the background work's CPU seconds from the bucket."""
        self.seconds -= seconds
        self._own += seconds
        self._pause_if_dry(self._cpu())

    def _pause_if_dry(self, now: float) -> None:
        # Dry: spent until the process's CPU has earned the debt back at the share, at the
        # earliest (time waited meanwhile may ask for more at the next refill).
        self._resume_at = None if self.seconds > 0 else now - self.seconds / self.share
