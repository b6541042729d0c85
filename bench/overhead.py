"""The app's own cost per request, in process: fashion-serve against bare Flask and the floor.

One multipart upload through WSGI without a server, to fashion-serve, a bare Flask route, the
floor alone, and a bare Flask route doing the floor's work (the overhead: first minus last).
`python -m bench.overhead` prints median µs per call; `--callgrind`, instructions per request.
"""

import argparse
import ctypes
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

VARIANTS = ("fashion-serve", "bare Flask", "floor", "bare Flask + floor")
CALLGRIND_CALLS = 50
MIN_SAMPLES = 200


def callables(model_dir: Path) -> dict[str, Callable[[], object]]:
    """One request's work for each variant (the app, the bare route, the floor)."""
    from flask import Flask, Response
    from werkzeug.test import EnvironBuilder

    from bench.workload import BOUNDARY, multipart, test_image
    from service.data_plane import Result
    from service.http import create_app
    from service.http.current import data_plane
    from service.http.predict import encode
    from service.preprocess import preprocess_images
    from service.settings import Settings

    png = test_image()
    body = multipart([png])
    builder = EnvironBuilder(
        path="/predict",
        method="POST",
        data=body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    template = builder.get_environ()

    def call(app) -> Callable[[], object]:
        def request() -> object:
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO(body)
            result = app(environ, _start_response)
            data = b"".join(result)
            if hasattr(result, "close"):
                result.close()
            return data

        return request

    ours = create_app(Settings(model_dir=model_dir, device="cpu"))
    with ours.app_context():
        service = data_plane()
    loaded, alias = service.model(None, None, None)
    constant = encode(Result(loaded, alias, loaded.model.run(preprocess_images([png]))))
    bare = Flask("bare")
    bare.post("/predict")(lambda: Response(constant, mimetype="application/json"))

    def floor() -> bytes:
        return encode(Result(loaded, alias, loaded.model.run(preprocess_images([png]))))

    bare_floor = Flask("bare_floor")
    bare_floor.post("/predict")(lambda: Response(floor(), mimetype="application/json"))
    return {
        "fashion-serve": call(ours.wsgi_app),
        "bare Flask": call(bare.wsgi_app),
        "floor": floor,
        "bare Flask + floor": call(bare_floor.wsgi_app),
    }


def _start_response(status, headers, exc_info=None) -> None:
    """WSGI's start_response; the status is not needed here."""


def timed(model_dir: Path, rounds: int, budget: float) -> dict[str, float]:
    """Median µs per call of each variant, the variants called in turn, one call at a time.

    In rotation, every variant runs with the caches the others leave behind, as a request does
    in a server; a loop of the same call keeps its own working set warm and hid what the app's
    code costs onnxruntime and Pillow in the caches (the loop measured the app at -18 µs,
    rotation at 113-162 µs; bench/README.md).
    """
    calls = callables(model_dir)
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for work in calls.values():
        work()
    deadline = time.perf_counter() + rounds * budget
    while time.perf_counter() < deadline or len(samples[VARIANTS[0]]) < MIN_SAMPLES:
        for name in VARIANTS:
            started = time.perf_counter()
            calls[name]()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def counted(model_dir: Path, calls: int) -> None:
    """Run each variant `calls` times inside one walk of a one-node tree, which callgrind counts.

    glibc's twalk calls its action back into Python (ctypes) once, through its internal
    `trecurse`, which nothing else in the process calls (qsort_r, the obvious choice, is also
    called inside requests). So imports, app start-up and warm-up stay out of the count
    (--collect-atstart=no --toggle-collect=trecurse), and each variant's count is dumped to a
    file of its own when the walk returns (--dump-after=trecurse).
    """
    libc = ctypes.CDLL(None)
    libc.tsearch.restype = ctypes.c_void_p
    compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda a, b: 0)
    visit = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)
    for work in callables(model_dir).values():
        for _ in range(20):
            work()
        root, key = ctypes.c_void_p(), ctypes.c_int(1)
        libc.tsearch(ctypes.byref(key), ctypes.byref(root), compare)

        def action(_node, _which, _depth, work=work) -> None:
            for _ in range(calls):
                work()

        libc.twalk(root, visit(action))


def instructions(model_dir: Path, calls: int = CALLGRIND_CALLS) -> dict[str, float]:
    """Instructions per request of each variant, from one valgrind run."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as folder, _environ() as env:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            [
                *("valgrind", "--tool=callgrind", "--collect-atstart=no"),
                *("--toggle-collect=trecurse", "--dump-after=trecurse"),
                f"--callgrind-out-file={out}",
                *(sys.executable, "-m", "bench.overhead", "--count"),
                *("--calls", str(calls), "--model-dir", str(model_dir)),
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=3600,
        )
        parts = sorted(Path(folder).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        totals = [
            int(line.split()[1])
            for part in parts
            for line in part.read_text().splitlines()
            if line.startswith("totals:")
        ]
    if len(totals) != len(VARIANTS):
        raise RuntimeError(f"expected {len(VARIANTS)} callgrind dumps, got {len(totals)}")
    return {variant: total / calls for variant, total in zip(VARIANTS, totals, strict=True)}


def measure(model_dir: Path, callgrind: bool, rounds: int, budget: float) -> dict:
    """Both measurements, each in a fresh process pinned to the server CPU (for bench.bench)."""
    from bench.workload import SERVER_CPU

    command = [sys.executable, "-m", "bench.overhead", "--model-dir", str(model_dir)]
    command += ["--rounds", str(rounds), "--budget", str(budget)]
    with _environ() as env:
        timing = subprocess.run(
            ["taskset", "-c", SERVER_CPU, *command],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    found = {"µs": json.loads(timing.stdout)}
    if callgrind:
        found["instructions"] = instructions(model_dir)
    return found


@contextmanager
def _environ() -> Iterator[dict[str, str]]:
    """Metrics in multiprocess mode, as under gunicorn, in a folder removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fashion-bench-metrics-") as folder:
        yield {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per sample set")
    parser.add_argument("--count", action="store_true", help="the run callgrind counts")
    parser.add_argument("--calls", type=int, default=CALLGRIND_CALLS)
    parser.add_argument("--callgrind", action="store_true", help="print instructions per call")
    args = parser.parse_args()
    # The access line of every call would flood the terminal; it is still written (to null).
    null = os.open(os.devnull, os.O_WRONLY)
    stderr = os.dup(2)
    os.dup2(null, 2)
    try:
        if args.count:
            counted(args.model_dir, args.calls)
        elif args.callgrind:
            print(json.dumps(instructions(args.model_dir, args.calls)))
        else:
            print(json.dumps(timed(args.model_dir, args.rounds, args.budget)))
    finally:
        os.dup2(stderr, 2)


if __name__ == "__main__":
    main()
