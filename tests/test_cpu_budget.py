"""The background work's CPU budget: earned at a share of the process's CPU, forfeited by waiting
for a CPU, spent by the work itself; and the kernel's count of the time waited."""

import subprocess
import sys

import pytest

from service.cpu_budget import CpuBudget, waited_for_cpu

SHARE, BURST = 0.5, 1.0  # binary fractions: the sums below are exact


class Clocks:
    """The process's CPU seconds and its main thread's seconds waited for a CPU, set by hand."""

    def __init__(self) -> None:
        self.cpu, self.waited = 10.0, 3.0

    def budget(self) -> CpuBudget:
        return CpuBudget(SHARE, BURST, cpu=lambda: self.cpu, waited=lambda: self.waited)

    def work(self, budget: CpuBudget, seconds: float) -> None:
        """The background work runs this long, in the process's CPU time, and pays for it."""
        self.cpu += seconds
        budget.charge(seconds)

    def serve(self, seconds: float, waited: float = 0.0) -> None:
        self.cpu += seconds
        self.waited += waited


def test_a_fresh_budget_allows_its_burst_then_is_dry():
    clocks = Clocks()
    budget = clocks.budget()
    assert budget.refill()
    assert not budget.spent()
    clocks.work(budget, BURST)
    assert not budget.refill()  # the work's own CPU seconds earn nothing
    clocks.work(budget, 0.125)
    assert budget.spent()


@pytest.mark.parametrize(
    ("served", "waited", "earned"),
    [
        (1.0, 0.0, 0.5),  # ran whenever ready: the full share
        (1.0, 0.5, 0.25),  # waited half as long as it served: the share of the rest
        (1.0, 1.0, 0.0),  # waited as long as it served: nothing
        (1.0, 2.0, 0.0),  # waiting never takes away what was earned
    ],
)
def test_serving_earns_the_share_of_the_cpu_it_did_not_wait_for(served, waited, earned):
    clocks = Clocks()
    budget = clocks.budget()
    clocks.work(budget, BURST)  # empty, not in debt
    clocks.serve(served, waited)
    assert budget.refill() == (earned > 0)
    assert budget.seconds == earned


def test_a_debt_is_spent_until_the_serving_has_earned_it_back():
    clocks = Clocks()
    budget = clocks.budget()
    clocks.work(budget, BURST + 0.125)  # 0.125 s in debt: 0.25 s of serving at one half
    clocks.serve(0.125)
    assert budget.spent()
    clocks.serve(0.125)
    assert not budget.spent()
    assert not budget.refill()  # earned back to zero: still nothing to spend
    clocks.serve(0.25)
    assert budget.refill()
    assert budget.seconds == 0.125


def test_time_waited_meanwhile_prolongs_a_debt():
    clocks = Clocks()
    budget = clocks.budget()
    clocks.work(budget, BURST + 0.125)
    clocks.serve(0.25, waited=0.125)  # half of it waiting for a CPU: half the earning
    assert not budget.spent()  # the request path's clock read cannot know ...
    assert not budget.refill()  # ... the refill does: still 0.0625 s in debt
    assert budget.spent()
    clocks.serve(0.25)
    assert budget.refill()
    assert budget.seconds == 0.0625


def test_the_burst_caps_what_a_long_idle_spell_saves():
    clocks = Clocks()
    budget = clocks.budget()
    clocks.serve(100.0)
    assert budget.refill()
    assert budget.seconds == BURST


# A process and a busy child on the same single CPU: each runs about half the time.
CONTENDED = """
import os, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
busy = os.fork()
if busy == 0:
    stop = time.monotonic() + 10  # gone in time even if its parent is not
    while time.monotonic() < stop:
        pass
    os._exit(0)
from service.cpu_budget import waited_for_cpu
before = waited_for_cpu()
start = time.process_time()
while time.process_time() - start < 0.2:
    pass
print(waited_for_cpu() - before)
os.kill(busy, 9)
"""


def test_the_kernel_counts_the_time_the_process_waited_for_a_cpu():
    assert waited_for_cpu() >= 0.0
    waited = float(
        subprocess.run(
            [sys.executable, "-c", CONTENDED],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    assert waited > 0.1  # 0.2 s of its own CPU beside a busy neighbour: about as long waited
