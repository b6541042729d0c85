"""An alias's earlier targets: what a promotion records, where a rollback lands."""

# Earlier targets kept per alias: rollback rarely goes further back, and the file must not grow
# with every promotion forever.
HISTORY_LIMIT = 50


def record(history: dict[str, list[int]], alias: str, previous: int) -> None:
    """Append the target an alias is leaving, keeping the last HISTORY_LIMIT."""
    earlier = history.setdefault(alias, [])
    earlier.append(previous)
    del earlier[:-HISTORY_LIMIT]


def step_back(
    history: dict[str, list[int]], alias: str, current: int, versions: list[int]
) -> int | None:
    """Take the latest earlier target that still exists and is not current (None if none).

    Targets passed over (gone, or equal to the current one) leave the history with it.
    """
    earlier = [v for v in history.get(alias, []) if v in versions]
    while earlier and earlier[-1] == current:
        earlier.pop()
    if not earlier:
        return None
    target = earlier.pop()
    if earlier:
        history[alias] = earlier
    else:
        history.pop(alias, None)
    return target
