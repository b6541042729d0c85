"""Benchmark fashion-serve against FastAPI+uvicorn and naive Flask, one pinned core each.

Run from the project root: `.venv/bin/python -m bench.bench` (add --quick for a smoke run).
Prints one Markdown report: the in-process floor stage by stage, then every stack's req/s,
latency, errors, memory and start-up, as medians over interleaved rounds, with ratios.
"""

import argparse
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from service.contract import CLASS_NAMES
from service.http.predict import result_body
from service.inference import Result
from service.loader import LoadedModel
from service.preprocess import preprocess_images
from service.registry import Registry
from service.runtime import CPU, OnnxModel

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
REFERENCE_VENV = BENCH / ".venv-reference"
REFERENCE_REQUIREMENTS = BENCH / "reference" / "requirements.txt"
MODEL_NAME = "fashion-mnist"
ALIAS = "production"
BATCH = 256
SERVER_CPU, CLIENT_CPU = "0", "1"
BOUNDARY = "fashionbenchboundary"
READY_TIMEOUT = 120.0
OURS, FASTAPI, NAIVE = "fashion-serve", "FastAPI+uvicorn", "naive Flask"


@dataclass(frozen=True)
class Shape:
    """One request shape the load generator sends to /predict."""

    name: str
    body: bytes
    content_type: str
    images: int


@dataclass
class Stack:
    """A server under test: how to start it, and what was measured of it."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    ready_seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    runs: dict[str, list[dict]] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)


def main() -> None:
    """Parse options, measure the floor, run the interleaved load rounds, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: one short round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument("--requests", type=int, help="single-image requests per path and round")
    parser.add_argument("--concurrency", type=int, default=8, help="hey clients (default 8)")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models", help="a registry")
    parser.add_argument(
        "--stacks", default=f"{OURS},{FASTAPI},{NAIVE}", help="comma-separated stacks to run"
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    single = args.requests or (300 if args.quick else 3000)
    batches = max(4, single // 20)

    with tempfile.TemporaryDirectory(prefix="fashion-bench-") as tmp:
        work = Path(tmp)
        registry, version, model_path = _model(args.model_dir, work)
        png = _test_image()
        floor = measure_floor(model_path.read_bytes(), png, quick=args.quick)
        expected = _expected(model_path.read_bytes(), png)
        paths = _paths(png)
        wanted = [name.strip() for name in args.stacks.split(",")]
        stacks = [s for s in _stacks(registry, version, model_path, work) if s.name in wanted]
        started = time.monotonic()
        for round_ in range(rounds):
            # Rotate the order so no stack always runs first (cold caches) or last.
            for stack in stacks[round_ % len(stacks) :] + stacks[: round_ % len(stacks)]:
                _run_round(stack, paths, expected, single, batches, args.concurrency, work)
        print(report(floor, stacks, paths, rounds, single, batches, args.concurrency, started))


# -- the model and the test image ------------------------------------------------------------


def _model(model_dir: Path, work: Path) -> tuple[Path, int, Path]:
    """The registry to serve: the shipped one if its production alias resolves, else a stand-in."""
    try:
        registry = Registry(model_dir)
        version = registry.resolve(MODEL_NAME, alias=ALIAS)
        registry.verify_version(MODEL_NAME, version)
        return model_dir, version, registry.model_path(MODEL_NAME, version)
    except Exception as error:  # missing, not yet trained, or refused: all mean "build one"
        print(f"# {model_dir} not servable ({error}); using a stand-in MLP", file=sys.stderr)
    root = work / "models"
    root.mkdir()
    registry = Registry(root)
    onnx_file = work / "stand-in.onnx"
    onnx_file.write_bytes(_stand_in_mlp())
    version = registry.register(MODEL_NAME, onnx_file, {"architecture": {"name": "stand-in"}})
    registry.set_alias(MODEL_NAME, ALIAS, version)
    return root, version, registry.model_path(MODEL_NAME, version)


def _stand_in_mlp() -> bytes:
    """The shipped architecture (Flatten → Dense 128 ReLU → Dense 10 → softmax), seeded weights."""
    from onnx import TensorProto, helper, numpy_helper  # training-side tool: only needed here

    rng = np.random.default_rng(42)
    tensors = {
        "flat_shape": np.array([-1, 784], dtype=np.int64),
        "w1": rng.normal(0, 0.05, (784, 128)).astype(np.float32),
        "b1": np.zeros(128, dtype=np.float32),
        "w2": rng.normal(0, 0.2, (128, 10)).astype(np.float32),
        "b2": np.zeros(10, dtype=np.float32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w1", "b1"], ["hidden_pre"]),
            helper.make_node("Relu", ["hidden_pre"], ["hidden"]),
            helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "stand-in-mlp-128",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(value, name) for name, value in tensors.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _test_image() -> bytes:
    """A 28×28 grey PNG of a light boot-like shape on black, as a client would upload it."""
    image = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(image)
    draw.polygon([(6, 4), (14, 4), (15, 16), (24, 19), (24, 24), (5, 24)], fill=200)
    draw.line([(6, 12), (14, 12)], fill=120, width=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _expected(model: bytes, png: bytes) -> list[float]:
    """onnxruntime in-process on the same bytes: what every stack must answer, exactly."""
    session = OnnxModel(model, [CPU])
    return session.run(preprocess_images([png]))[0].tolist()


def _paths(png: bytes) -> list[Shape]:
    """Multipart with one image, the same image as a raw body, and a 256-image multipart batch."""
    return [
        Shape("multipart", _multipart([png]), f"multipart/form-data; boundary={BOUNDARY}", 1),
        Shape("raw body", png, "image/png", 1),
        Shape(
            f"batch {BATCH}",
            _multipart([png] * BATCH),
            f"multipart/form-data; boundary={BOUNDARY}",
            BATCH,
        ),
    ]


def _multipart(blobs: list[bytes]) -> bytes:
    """A multipart/form-data body with each blob as a file in the field 'image'."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
        f'filename="{index}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + blob
        + b"\r\n"
        for index, blob in enumerate(blobs)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


# -- the in-process floor --------------------------------------------------------------------


def measure_floor(model: bytes, png: bytes, quick: bool) -> dict[int, dict[str, float]]:
    """Microseconds per image of each stage on CPU 0, for one image and a 256-image batch."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(SERVER_CPU)})
    try:
        session = OnnxModel(model, [CPU])
        session.warm_up()
        loaded = LoadedModel(MODEL_NAME, 1, {}, session, 0.0)
        floor = {}
        for count in (1, BATCH):
            blobs = [png] * count
            images = preprocess_images(blobs)
            probabilities = session.run(images)
            stages = {
                "decode + normalize": lambda b=blobs: preprocess_images(b),
                "onnxruntime": lambda i=images: session.run(i),
                "JSON": lambda p=probabilities: json.dumps(
                    result_body(Result(loaded, ALIAS, p))
                ).encode(),
            }
            budget = 0.3 if quick else 1.5
            floor[count] = {
                stage: _median_seconds(call, budget) / count * 1e6 for stage, call in stages.items()
            }
        return floor
    finally:
        os.sched_setaffinity(0, affinity)


def _median_seconds(call: Callable[[], object], budget: float) -> float:
    """Median wall time of one call, over repeated samples filling about `budget` seconds."""
    call()
    started = time.perf_counter()
    call()
    once = max(time.perf_counter() - started, 1e-7)
    per_sample = max(1, int(0.02 / once))  # samples of ~20 ms: timer resolution is no issue
    samples = []
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline or len(samples) < 5:
        started = time.perf_counter()
        for _ in range(per_sample):
            call()
        samples.append((time.perf_counter() - started) / per_sample)
    return statistics.median(samples)


# -- the stacks ------------------------------------------------------------------------------


def _stacks(registry: Path, version: int, model: Path, work: Path) -> list[Stack]:
    """fashion-serve, FastAPI+uvicorn and naive Flask, each one worker serving the same file."""
    python = Path(sys.executable)
    reference = _reference_python()
    shared = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    refs = {
        **shared,
        "BENCH_MODEL": str(model),
        "BENCH_MODEL_NAME": MODEL_NAME,
        "BENCH_MODEL_VERSION": str(version),
    }
    ours, fast, naive = _free_port(), _free_port(), _free_port()
    return [
        Stack(
            OURS,
            [str(python.parent / "gunicorn"), "-c", "service/gunicorn.conf.py", "service.wsgi:app"],
            {
                **shared,
                "FASHION_MODEL_DIR": str(registry),
                "FASHION_BIND": f"127.0.0.1:{ours}",
                "FASHION_WORKERS": "1",
                "FASHION_DEVICE": "cpu",
                "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
            },
            ours,
        ),
        Stack(
            FASTAPI,
            [
                str(reference.parent / "uvicorn"),
                "bench.reference.fastapi_app:app",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--port",
                str(fast),
            ],
            refs,
            fast,
        ),
        Stack(
            NAIVE,
            [
                str(python.parent / "gunicorn"),
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{naive}",
                "--no-control-socket",
                "bench.reference.naive_flask:app",
            ],
            refs,
            naive,
        ),
    ]


def _reference_python() -> Path:
    """The reference venv's python, (re)built with uv when its pinned requirements changed."""
    python = REFERENCE_VENV / "bin" / "python"
    stamp = REFERENCE_VENV / ".requirements-sha256"
    wanted = hashlib.sha256(REFERENCE_REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    uv = str(Path(sys.executable).parent / "uv")
    print(f"# building {REFERENCE_VENV} with uv", file=sys.stderr)
    if not python.exists():
        subprocess.run([uv, "venv", str(REFERENCE_VENV), "--python", "python3"], check=True)
    subprocess.run(
        [uv, "pip", "install", "--python", str(python), "-r", str(REFERENCE_REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(wanted)
    return python


def _free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_round(
    stack: Stack,
    paths: list[Shape],
    expected: list[float],
    single: int,
    batches: int,
    concurrency: int,
    work: Path,
) -> None:
    """Start the stack on CPU 0, check its answers, load every path from CPU 1, then stop it."""
    log = (work / f"{stack.name.split()[0]}.log").open("ab")
    started = time.monotonic()
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *stack.command],
        cwd=ROOT,
        env=stack.env,
        stdout=log,
        stderr=log,
        start_new_session=True,  # one process group: stopping it stops gunicorn's workers too
    )
    try:
        _wait_ready(stack.port, server)
        stack.ready_seconds.append(time.monotonic() - started)
        for path in paths:
            problem = _check_answer(stack.port, path, expected)
            if problem:
                stack.wrong.append(f"{path.name}: {problem}")
        for path in paths:
            clients = concurrency if path.images == 1 else 2
            # hey gives each client count // clients requests: keep the total exact.
            count = (single if path.images == 1 else batches) // clients * clients
            _hey(stack.port, path, max(clients, count // 10), clients, work)  # warm-up
            cpu = _cpu_seconds(server.pid)
            run = _parse_hey(_hey(stack.port, path, count, clients, work), count)
            run["cpu_us"] = (_cpu_seconds(server.pid) - cpu) / count * 1e6
            stack.runs.setdefault(path.name, []).append(run)
        stack.rss_mb.append(_worker_rss_mb(server.pid))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    """One request on a fresh connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_ready(port: int, server: subprocess.Popen) -> None:
    """Poll /readyz until it answers 200; raise if the server exits or takes too long."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with status {server.returncode} before ready")
        try:
            if _request(port, "GET", "/readyz")[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.01)
    raise RuntimeError(f"not ready after {READY_TIMEOUT:.0f} s")


def _check_answer(port: int, path: Shape, expected: list[float]) -> str | None:
    """None when every prediction equals onnxruntime in-process, else what differs."""
    status, body = _request(
        port, "POST", "/predict", path.body, {"Content-Type": path.content_type}
    )
    if status != 200:
        return f"status {status}: {body[:200]!r}"
    predictions = json.loads(body)["predictions"]
    if len(predictions) != path.images:
        return f"{len(predictions)} predictions for {path.images} images"
    for prediction in predictions:
        got = [prediction["probabilities"][name] for name in CLASS_NAMES]
        if got != expected:
            return f"probabilities {got} differ from in-process {expected}"
        if prediction["class_id"] != int(np.argmax(expected)):
            return f"class {prediction['class_id']} is not the argmax"
    return None


def _hey(port: int, path: Shape, count: int, clients: int, work: Path) -> str:
    """Run hey pinned to CPU 1; one CSV line per request."""
    body = work / f"{path.name.replace(' ', '-')}.body"
    if not body.exists():
        body.write_bytes(path.body)
    return subprocess.run(
        [
            *("taskset", "-c", CLIENT_CPU, "hey", "-n", str(count), "-c", str(clients)),
            *("-m", "POST", "-t", "30", "-o", "csv", "-D", str(body), "-T", path.content_type),
            f"http://127.0.0.1:{port}/predict",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout


def _parse_hey(csv: str, count: int) -> dict:
    """req/s, p50/p99 ms and errors from hey's per-request CSV."""
    rows = [line.split(",") for line in csv.splitlines()[1:] if line]
    # Columns: response-time, DNS+dialup, DNS, request-write, response-delay, response-read,
    # status-code, offset (seconds since the start).
    seconds = np.array([float(row[0]) for row in rows])
    finished = max(float(row[7]) + float(row[0]) for row in rows)
    ok = sum(row[6] == "200" for row in rows)
    return {
        "rps": len(rows) / finished,
        "p50": float(np.percentile(seconds, 50)) * 1000,
        "p99": float(np.percentile(seconds, 99)) * 1000,
        # Anything but a 200 counts: other statuses, and requests that got no response at all.
        "errors": count - ok,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server and its workers.

    On a shared host wall-clock req/s swings with the neighbours' load; the CPU time the server
    itself spends per request does not, so it is reported beside req/s.
    """
    total = 0
    for process in [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]:
        # Fields after the command name (which may hold spaces): utime and stime are 12th, 13th.
        fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _worker_rss_mb(pid: int) -> float:
    """Resident memory of the process serving requests: gunicorn's worker, or uvicorn itself."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    worker = int(children[0]) if children else pid
    status = Path(f"/proc/{worker}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


# -- the report ------------------------------------------------------------------------------


def report(
    floor: dict[int, dict[str, float]],
    stacks: list[Stack],
    paths: list[Shape],
    rounds: int,
    single: int,
    batches: int,
    concurrency: int,
    started: float,
) -> str:
    """The Markdown report: floor by stage, one table of medians with ratios, then the targets."""
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
        f"Servers: one worker pinned to CPU {SERVER_CPU}; hey on CPU {CLIENT_CPU} with "
        f"{concurrency} clients × {single} requests (batches: 2 × {batches}); "
        f"medians of {rounds} interleaved round(s); load phase {time.monotonic() - started:.0f} s.",
        "",
        "| stack | path | req/s | images/s | p50 ms | p99 ms | errors | CPU µs/req | RSS MB "
        "| ready s | × FastAPI: req/s (CPU) | × naive Flask: req/s (CPU) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    medians = {
        (stack.name, name): _medians(runs) for stack in stacks for name, runs in stack.runs.items()
    }
    for stack in stacks:
        for path in paths:
            m = medians.get((stack.name, path.name))
            if m is None:
                continue
            ratios = [
                f"{m['rps'] / medians[(other, path.name)]['rps']:.2f}× "
                f"({medians[(other, path.name)]['cpu_us'] / m['cpu_us']:.2f}×)"
                if (other, path.name) in medians
                else "–"
                for other in (FASTAPI, NAIVE)
            ]
            lines.append(
                f"| {stack.name} | {path.name} | {m['rps']:,.0f} | {m['rps'] * path.images:,.0f} "
                f"| {m['p50']:.1f} | {m['p99']:.1f} | {m['errors']} | {m['cpu_us']:,.0f} "
                f"| {statistics.median(stack.rss_mb):.0f} "
                f"| {statistics.median(stack.ready_seconds):.2f} | {' | '.join(ratios)} |"
            )
    lines += ["", *_targets(stacks, medians, totals[BATCH])]
    return "\n".join(lines)


def _medians(runs: list[dict]) -> dict:
    """Per-metric medians over rounds; errors are summed, since any error matters."""
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50": statistics.median(r["p50"] for r in runs),
        "p99": statistics.median(r["p99"] for r in runs),
        "cpu_us": statistics.median(r["cpu_us"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def _targets(stacks: list[Stack], medians: dict, batch_floor_us: float) -> list[str]:
    """Issue 6's targets, each marked met or missed, plus any wrong answer."""
    ours = next((s for s in stacks if s.name == OURS), None)
    lines = [f"Correctness: {s.name}: {'; '.join(s.wrong) or 'identical'}" for s in stacks]
    if ours is None:
        return lines
    multipart = medians[(OURS, "multipart")]

    def ratio(other: str, path: str = "multipart") -> float:
        """fashion-serve's req/s over another stack's on a path (0 when it was not run)."""
        return multipart["rps"] / medians[(other, path)]["rps"] if (other, path) in medians else 0

    batch_share = medians[(OURS, f"batch {BATCH}")]["rps"] * BATCH * batch_floor_us / 1e6
    checks = [
        ("multipart ≥ 1.1× FastAPI", ratio(FASTAPI) >= 1.1, f"{ratio(FASTAPI):.2f}×"),
        ("multipart ≥ 1.7× naive Flask", ratio(NAIVE) >= 1.7, f"{ratio(NAIVE):.2f}×"),
        ("multipart p99 ≤ 5 ms", multipart["p99"] <= 5, f"{multipart['p99']:.1f} ms"),
        (
            "zero errors",
            not sum(m["errors"] for (name, _), m in medians.items() if name == OURS),
            "",
        ),
        (
            "raw body ≥ multipart",
            medians[(OURS, "raw body")]["rps"] >= multipart["rps"],
            f"{medians[(OURS, 'raw body')]['rps'] / multipart['rps']:.2f}×",
        ),
        (f"batch {BATCH} ≥ 70 % of floor", batch_share >= 0.7, f"{batch_share:.0%}"),
        (
            "RSS per worker ≤ 80 MB",
            statistics.median(ours.rss_mb) <= 80,
            f"{statistics.median(ours.rss_mb):.0f} MB",
        ),
        (
            "start → /readyz ≤ 1 s",
            statistics.median(ours.ready_seconds) <= 1,
            f"{statistics.median(ours.ready_seconds):.2f} s",
        ),
        ("answers identical to in-process", not ours.wrong, ""),
    ]
    return [
        *lines,
        "",
        "Targets (fashion-serve):",
        "",
        *(f"- {'met' if ok else 'MISSED'}: {what} {value}".rstrip() for what, ok, value in checks),
    ]


if __name__ == "__main__":
    main()
