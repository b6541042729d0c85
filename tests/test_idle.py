"""The idle gate: open until a loop says it is busy, waited on by background work."""

import threading

from service.idle import IdleGate


def test_a_gate_no_loop_drives_stays_open():
    """Under gthread nothing marks the process busy: background work runs as before."""
    assert IdleGate().wait(0)


def test_a_busy_loop_holds_waiters_until_it_is_idle():
    gate = IdleGate()
    gate.busy()
    assert not gate.wait(0.05)
    opened = threading.Event()
    waiter = threading.Thread(target=lambda: gate.wait(30) and opened.set())
    waiter.start()
    gate.idle()
    waiter.join(timeout=30)
    assert opened.is_set()
    gate.busy()
    assert not gate.wait(0)
