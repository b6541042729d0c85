"""Load rounds: each stack started afresh, its answers checked, every request shape sent by hey."""

import json
import subprocess
from pathlib import Path

import numpy as np

from bench.stacks import Stack, cpu_seconds, request, running, worker_memory_mb
from bench.workload import CLIENT_CPU, Shape
from service.contract import CLASS_NAMES


def run_round(
    stack: Stack,
    shapes: list[Shape],
    expected: list[float],
    single: int,
    batches: int,
    concurrency: int,
    work: Path,
) -> None:
    """Start the stack on the server CPU, check its answers, load every shape, then stop it."""
    with running(stack, work / f"{stack.name.replace(' ', '-')}.log") as server:
        for shape in shapes:
            problem = check_answer(stack.port, shape, expected)
            if problem:
                stack.wrong.append(f"{shape.name}: {problem}")
        for shape in shapes:
            clients = concurrency if shape.images == 1 else 2
            # hey gives each client count // clients requests: keep the total exact.
            count = (single if shape.images == 1 else batches) // clients * clients
            hey(stack.port, shape, work, clients, count=max(clients, count // 10))  # warm-up
            cpu = cpu_seconds(server.pid)
            run = parse_hey(hey(stack.port, shape, work, clients, count=count), count)
            run["cpu_us"] = (cpu_seconds(server.pid) - cpu) / count * 1e6
            stack.runs.setdefault(shape.name, []).append(run)
        stack.memory.append(worker_memory_mb(server.pid))


def check_answer(port: int, shape: Shape, expected: list[float]) -> str | None:
    """None when every prediction equals onnxruntime in-process, else what differs."""
    status, body = request(
        port, "POST", "/predict", shape.body, {"Content-Type": shape.content_type}
    )
    if status != 200:
        return f"status {status}: {body[:200]!r}"
    predictions = json.loads(body)["predictions"]
    if len(predictions) != shape.images:
        return f"{len(predictions)} predictions for {shape.images} images"
    for prediction in predictions:
        got = [prediction["probabilities"][name] for name in CLASS_NAMES]
        if got != expected:
            return f"probabilities {got} differ from in-process {expected}"
        if prediction["class_id"] != int(np.argmax(expected)):
            return f"class {prediction['class_id']} is not the argmax"
    return None


def hey(
    port: int,
    shape: Shape,
    work: Path,
    clients: int,
    count: int | None = None,
    seconds: float | None = None,
    host: str = "127.0.0.1",
) -> str:
    """Run hey pinned to the client CPU, `count` requests or for `seconds`; one CSV line each."""
    body = work / f"{shape.name.replace(' ', '-')}.body"
    if not body.exists():
        body.write_bytes(shape.body)
    amount = ("-n", str(count)) if count else ("-z", f"{seconds}s")
    return subprocess.run(
        [
            *("taskset", "-c", CLIENT_CPU, "hey", *amount, "-c", str(clients)),
            *("-m", "POST", "-t", "30", "-o", "csv", "-D", str(body), "-T", shape.content_type),
            f"http://{host}:{port}/predict",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout


def parse_hey(csv: str, count: int | None = None) -> dict:
    """req/s, p50/p99 ms and failures from hey's per-request CSV (count: how many were sent)."""
    rows = [line.split(",") for line in csv.splitlines()[1:] if line]
    if not rows:  # not one answer in the whole run
        nothing = float("nan")
        return {"requests": 0, "rps": 0.0, "p50": nothing, "p99": nothing, "errors": count or "all"}
    # Columns: response-time, DNS+dialup, DNS, request-write, response-delay, response-read,
    # status-code, offset (seconds since the start).
    seconds = np.array([float(row[0]) for row in rows])
    finished = max(float(row[7]) + float(row[0]) for row in rows)
    ok = sum(row[6] == "200" for row in rows)
    return {
        "requests": len(rows),
        "rps": len(rows) / finished,
        "p50": float(np.percentile(seconds, 50)) * 1000,
        "p99": float(np.percentile(seconds, 99)) * 1000,
        # Anything but a 200 counts: other statuses, and requests that got no response at all.
        "errors": (count if count is not None else len(rows)) - ok,
    }
