"""The in-process floor: what decoding, the model and the JSON body cost without any server."""

import os
import statistics
import time
from collections.abc import Callable

from bench.workload import ALIAS, BATCH, MODEL_NAME, SERVER_CPU
from service.data_plane import Result
from service.http.predict import encode
from service.loader import LoadedModel
from service.preprocess import preprocess_images
from service.runtime import CPU, OnnxModel


def measure_floor(model: bytes, png: bytes, quick: bool) -> dict[int, dict[str, float]]:
    """Microseconds per image of each stage on the server CPU, for one image and a batch."""
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
                "JSON": lambda p=probabilities: encode(Result(loaded, ALIAS, p)),
            }
            budget = 0.3 if quick else 1.5
            floor[count] = {
                stage: median_seconds(call, budget) / count * 1e6 for stage, call in stages.items()
            }
        return floor
    finally:
        os.sched_setaffinity(0, affinity)


def medians(floors: list[dict[int, dict[str, float]]]) -> dict[int, dict[str, float]]:
    """Each stage's median over several measure_floor() results."""
    return {
        count: {stage: statistics.median(f[count][stage] for f in floors) for stage in stages}
        for count, stages in floors[0].items()
    }


def median_seconds(call: Callable[[], object], budget: float) -> float:
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
