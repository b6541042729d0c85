"""The Markdown report: the floor and the app's own overhead, the stacks' medians, the targets."""

import statistics

from bench.stacks import FASTAPI, NAIVE, OURS, Stack
from bench.workload import BATCH, CLIENT_CPU, SERVER_CPU, Shape

OVERHEAD_TARGET_US = 40
USS_TARGET_MB = 60


def floor_table(floor: dict[int, dict[str, float]], overhead: dict) -> list[str]:
    """Stages per image, then fashion-serve's request against a bare Flask route and the floor."""
    lines = [
        f"In-process floor on CPU {SERVER_CPU} (µs per image, medians):",
        "",
        f"| stage | 1 image | batch of {BATCH} |",
        "|---|---:|---:|",
    ]
    for stage in floor[1]:
        lines.append(f"| {stage} | {floor[1][stage]:.1f} | {floor[BATCH][stage]:.1f} |")
    totals = {count: sum(stages.values()) for count, stages in floor.items()}
    lines += [
        f"| **total** | **{totals[1]:.1f}** | **{totals[BATCH]:.1f}** |",
        f"| images/s | {1e6 / totals[1]:,.0f} | {1e6 / totals[BATCH]:,.0f} |",
        "",
        "One multipart request of one image through WSGI, in process (no server): fashion-serve's "
        "`POST /predict`, a bare Flask route answering a constant body, the floor (decode + "
        "model + JSON body), and a bare Flask route doing the floor's work. The app's own "
        "overhead is the first minus the last.",
        "",
        "| per request | µs (timed, median) | instructions (callgrind) |",
        "|---|---:|---:|",
    ]
    timed, counted = overhead["µs"], overhead.get("instructions", {})
    for name in timed:
        count = f"{counted[name]:,.0f}" if name in counted else "–"
        lines.append(f"| {name} | {timed[name]:.1f} | {count} |")
    own = app_overhead(overhead)
    lines.append(
        f"| **app's own overhead** | **{own['µs']:.1f}** | "
        + (f"**{own['instructions']:,.0f}** |" if "instructions" in own else "– |")
    )
    return lines


def app_overhead(overhead: dict) -> dict[str, float]:
    """fashion-serve − (bare Flask + floor), in µs and (when counted) in instructions."""
    return {
        unit: values["fashion-serve"] - values["bare Flask + floor"]
        for unit, values in overhead.items()
    }


def stacks_table(
    stacks: list[Stack], shapes: list[Shape], rounds: int, single: int, batches: int, clients: int
) -> tuple[list[str], dict]:
    """One row per stack and shape (medians over rounds), with ratios; and the medians."""
    lines = [
        f"Servers: one worker pinned to CPU {SERVER_CPU}; hey on CPU {CLIENT_CPU} with {clients} "
        f"clients × {single} requests (batches: 2 × {batches}); medians of {rounds} interleaved "
        "round(s). Memory of the serving process after the round (MB): USS = its private pages, "
        "PSS = USS + its share of pages shared with other processes, RSS = every page it maps.",
        "",
        "| stack | path | req/s | images/s | p50 ms | p99 ms | errors | CPU µs/req | USS MB "
        "| PSS MB | RSS MB | ready s | × FastAPI: req/s (CPU: theirs ÷ ours) "
        "| × naive Flask: req/s (CPU: theirs ÷ ours) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    medians = {
        (stack.name, name): _medians(runs) for stack in stacks for name, runs in stack.runs.items()
    }
    for stack in stacks:
        memory = {
            kind: statistics.median(m[kind] for m in stack.memory) for kind in ("uss", "pss", "rss")
        }
        for shape in shapes:
            m = medians.get((stack.name, shape.name))
            if m is None:
                continue
            ratios = [
                f"{m['rps'] / medians[(other, shape.name)]['rps']:.2f}× "
                f"({medians[(other, shape.name)]['cpu_us'] / m['cpu_us']:.2f}×)"
                if (other, shape.name) in medians
                else "–"
                for other in (FASTAPI, NAIVE)
            ]
            lines.append(
                f"| {stack.name} | {shape.name} | {m['rps']:,.0f} | {m['rps'] * shape.images:,.0f} "
                f"| {m['p50']:.1f} | {m['p99']:.1f} | {m['errors']} | {m['cpu_us']:,.0f} "
                f"| {memory['uss']:.0f} | {memory['pss']:.0f} | {memory['rss']:.0f} "
                f"| {statistics.median(stack.ready_seconds):.2f} | {' | '.join(ratios)} |"
            )
    return lines, medians


def _medians(runs: list[dict]) -> dict:
    """Per-metric medians over rounds; errors are summed, since any error matters."""
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50": statistics.median(r["p50"] for r in runs),
        "p99": statistics.median(r["p99"] for r in runs),
        "cpu_us": statistics.median(r["cpu_us"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def targets(
    stacks: list[Stack],
    medians: dict,
    batch_floor_us: float,
    overhead: dict,
    slow: dict | None,
) -> list[str]:
    """Issue 16's targets, each marked met or missed, plus any wrong answer."""
    ours = next((s for s in stacks if s.name == OURS), None)
    lines = [f"Correctness: {s.name}: {'; '.join(s.wrong) or 'identical'}" for s in stacks]
    if ours is None or (OURS, "multipart") not in medians:
        return lines
    multipart = medians[(OURS, "multipart")]
    fast = medians.get((FASTAPI, "multipart"))
    rps_ratio = multipart["rps"] / fast["rps"] if fast else 0
    cpu_ratio = multipart["cpu_us"] / fast["cpu_us"] if fast else float("inf")
    batch_share = medians[(OURS, f"batch {BATCH}")]["rps"] * BATCH * batch_floor_us / 1e6
    uss = statistics.median(m["uss"] for m in ours.memory)
    own = app_overhead(overhead)["µs"]
    within = 0 < own <= OVERHEAD_TARGET_US
    checks = [
        ("multipart ≥ 1.1× FastAPI req/s", rps_ratio >= 1.1, f"{rps_ratio:.2f}×"),
        ("multipart CPU µs ≤ 0.9× FastAPI's", cpu_ratio <= 0.9, f"{cpu_ratio:.2f}×"),
        (
            "multipart p99 ≤ 2.5× p50",
            multipart["p99"] <= 2.5 * multipart["p50"],
            f"{multipart['p99'] / multipart['p50']:.1f}×",
        ),
        (
            "raw body ≥ multipart",
            medians[(OURS, "raw body")]["rps"] >= multipart["rps"],
            f"{medians[(OURS, 'raw body')]['rps'] / multipart['rps']:.2f}×",
        ),
        (f"batch {BATCH} ≥ 90 % of floor", batch_share >= 0.9, f"{batch_share:.0%}"),
        # A negative difference means the host's noise swamped the timing: not met, not known.
        (f"app's own overhead ≤ {OVERHEAD_TARGET_US} µs", within, f"{own:.0f} µs"),
        (f"USS per worker ≤ {USS_TARGET_MB} MB", uss <= USS_TARGET_MB, f"{uss:.0f} MB"),
        (
            "zero errors",
            not sum(m["errors"] for (name, _), m in medians.items() if name == OURS),
            "",
        ),
        ("answers identical to in-process", not ours.wrong, ""),
    ]
    if slow and OURS in slow:
        attacked = slow[OURS]["attacked"]
        checks.append(
            (
                "slow clients: 0 failed, p99 ≤ 100 ms",
                attacked["errors"] == 0 and attacked["p99"] <= 100,
                f"{attacked['errors']} failed, p99 {attacked['p99']:.0f} ms",
            )
        )
    return [
        *lines,
        "",
        "Targets (fashion-serve):",
        "",
        *(f"- {'met' if ok else 'MISSED'}: {what} {value}".rstrip() for what, ok, value in checks),
    ]
