"""The idle loop: the tasks an event loop runs a step at a time when it has nothing to do."""

from service.idle import IdleLoop


def test_a_loop_no_worker_drives_leaves_the_work_to_its_threads():
    """Under gthread nothing drives the loop: the shadow's own thread compares."""
    assert not IdleLoop().driven


def test_each_step_runs_the_first_task_with_work_until_none_has_any():
    loop = IdleLoop()
    loop.drive()
    done: list[str] = []
    work = {"first": 2, "second": 1}

    def task(name: str):
        def step() -> bool:
            if not work[name]:
                return False
            work[name] -= 1
            done.append(name)
            return True

        return step

    first, second = task("first"), task("second")
    loop.add(first)
    loop.add(second)
    assert [loop.step() for _ in range(4)] == [True, True, True, False]
    assert done == ["first", "first", "second"]
    work["first"] = 1
    loop.remove(first)
    loop.remove(first)  # twice: a closed runner closed again
    assert not loop.step()  # a removed task is not run
    assert loop.driven
