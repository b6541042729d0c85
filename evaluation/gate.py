"""The promotion gate: a candidate version takes an alias only if it is no worse than the
version the alias points at, on the test set and on the project's photo set.

Both versions are measured here, with onnxruntime as the service runs them (cards are not
trusted), on the 10,000 test images and on seeded product-photo renderings of test items put
through photo mode as an upload with the default query would be. The comparison goes into the
candidate's card, whatever the verdict.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evaluation.photos import render_photos
from service.contract import IMAGE_SIDE, validate_alias
from service.errors import FashionServeError, InvalidImage
from service.preprocess import normalize, preprocess_images
from service.registry import Registry
from service.runtime import CPU, OnnxModel
from training import data

PHOTO_COUNT = 2000
BATCH = 1000  # images per onnxruntime call
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)
PHOTO_SEED = 0
CARD_KEY = "gate"  # the card's list of comparisons, one per gated promotion
METRICS = {
    "test_accuracy": "test set",
    "photo_accuracy": "photos, photo mode",
    "photo_raw_accuracy": "same items, 28x28",
}
GATED = ("test_accuracy", "photo_accuracy")  # where a candidate must not be worse


class GateError(FashionServeError):
    """The gate cannot measure: its test set is missing or unreadable."""


class GateRefused(FashionServeError):
    """The candidate is worse than the alias's current version: the alias stays where it is."""


@dataclass(frozen=True)
class Benchmark:
    """The images both versions are measured on, labelled; float32 [N,28,28] in 0..1."""

    test_images: np.ndarray
    test_labels: np.ndarray
    photo_images: np.ndarray  # what photo mode made of each rendering it accepted
    photo_labels: np.ndarray
    photo_indices: np.ndarray  # the test-set row of every rendered item
    photo_kinds: list[str]
    photo_seed: int

    @property
    def photo_refusals(self) -> int:
        """Renderings photo mode refused: they count as wrong for every version."""
        return len(self.photo_indices) - len(self.photo_labels)


def load_benchmark(
    data_dir: str | None = None, photo_count: int | None = None, photo_seed: int = PHOTO_SEED
) -> Benchmark:
    """Read the test split and render and preprocess the photo set (seeded, deterministic).

    photo_count: the first that many test items (default PHOTO_COUNT).
    """
    photo_count = PHOTO_COUNT if photo_count is None else photo_count
    if photo_count < 1:
        raise GateError(f"the gate needs at least one photo, not {photo_count}")
    found = data.find_data_dir(data_dir)
    if found is None:
        raise GateError(
            f"the gate needs the Fashion-MNIST test set: none in ${data.ENV_VAR} or "
            f"{data.DEFAULT_DIR} (apt-get install dataset-fashion-mnist)"
        )
    try:
        dataset = data.load(found)
    except data.DataError as exc:
        raise GateError(f"the gate cannot read its test set: {exc}") from exc
    photos = render_photos(dataset.test_images, dataset.test_labels, photo_count, photo_seed)
    converted, labels = [], []
    for photo in photos:
        try:
            converted.append(preprocess_images([photo.data])[0])
        except InvalidImage:  # e.g. no object found on its ground: a 422 in the service
            continue
        labels.append(photo.label)
    indices = [photo.index for photo in photos]
    return Benchmark(
        test_images=normalize(dataset.test_images),
        test_labels=dataset.test_labels,
        photo_images=np.array(converted, dtype=np.float32).reshape(-1, *IMAGE_SHAPE),
        photo_labels=np.array(labels, dtype=np.int64),
        photo_indices=np.array(indices, dtype=np.int64),
        photo_kinds=sorted({photo.kind for photo in photos}),
        photo_seed=photo_seed,
    )


def _predict(model: OnnxModel, images: np.ndarray) -> np.ndarray:
    """The top class of every image, batch by batch."""
    return np.concatenate(
        [model.run(images[i : i + BATCH]).argmax(axis=1) for i in range(0, len(images), BATCH)]
    )


def _accuracy(predicted: np.ndarray, labels: np.ndarray, out_of: int) -> float:
    """Share of `out_of` items classified right (predictions may be fewer: refused photos)."""
    return round(int((predicted == labels).sum()) / out_of, 6)


Scores = dict[str, float]  # metric -> accuracy


def score(registry: Registry, name: str, version: int, benchmark: Benchmark) -> Scores:
    """A version's accuracies on the benchmark, from its verified model.onnx on onnxruntime."""
    model = OnnxModel(registry.read_verified(name, version), [CPU])
    photos = len(benchmark.photo_indices)
    # The photos' own dataset images are test-set rows: read their answers off the test run.
    tested = _predict(model, benchmark.test_images)
    raw = benchmark.photo_indices
    return {
        "test_accuracy": _accuracy(tested, benchmark.test_labels, len(benchmark.test_labels)),
        "photo_accuracy": _accuracy(
            _predict(model, benchmark.photo_images), benchmark.photo_labels, photos
        ),
        "photo_raw_accuracy": _accuracy(tested[raw], benchmark.test_labels[raw], photos),
    }


@dataclass(frozen=True)
class Comparison:
    """A candidate measured against an alias's current version (None: the alias is new)."""

    name: str
    alias: str
    candidate: int
    current: int | None
    scores: dict[int, Scores]  # version -> score()
    benchmark: Benchmark

    @property
    def worse_on(self) -> list[str]:
        """The gated metrics on which the candidate is below the current version."""
        if self.current is None:
            return []
        new, old = self.scores[self.candidate], self.scores[self.current]
        return [metric for metric in GATED if new[metric] < old[metric]]

    @property
    def passed(self) -> bool:
        return not self.worse_on

    def table(self) -> str:
        """The comparison as a plain-text table, one row per metric."""
        versions = [self.candidate] + ([self.current] if self.current is not None else [])
        header = ["", f"candidate v{self.candidate}"]
        if self.current is not None:
            header += [f"{self.alias} v{self.current}", "difference"]
        rows = [header]
        for metric, label in METRICS.items():
            row = [label] + [f"{self.scores[v][metric]:.4f}" for v in versions]
            if self.current is not None:
                difference = self.scores[self.candidate][metric] - self.scores[self.current][metric]
                row.append(f"{difference:+.4f}")
            rows.append(row)
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = []
        for row in rows:
            cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
            cells[0] = row[0].ljust(widths[0])
            lines.append("  ".join(cells))
        return "\n".join(lines)

    def card_entry(self) -> dict[str, object]:
        """What the candidate's card records of this comparison."""
        benchmark = self.benchmark
        return {
            "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "alias": self.alias,
            "against_version": self.current,
            "verdict": "promoted" if self.passed else "refused",
            "worse_on": self.worse_on,
            "scores": {str(v): s for v, s in self.scores.items()},
            "test_images": len(benchmark.test_labels),
            "photos": {
                "count": len(benchmark.photo_indices),
                "seed": benchmark.photo_seed,
                "kinds": benchmark.photo_kinds,
                "refused_by_photo_mode": benchmark.photo_refusals,
                "preprocessing": "service.preprocess.preprocess_images defaults (mode auto)",
            },
        }


def compare(
    registry: Registry, name: str, candidate: int, alias: str, benchmark: Benchmark
) -> Comparison:
    """Measure the candidate and the alias's current version (if any) on the benchmark."""
    current = registry.aliases(name).get(alias)
    versions = {candidate} | ({current} if current is not None else set())
    scores = {v: score(registry, name, v, benchmark) for v in sorted(versions)}
    return Comparison(name, alias, candidate, current, scores, benchmark)


def gated_promote(
    registry: Registry,
    name: str,
    candidate: int,
    alias: str,
    benchmark: Callable[[], Benchmark] = load_benchmark,
    *,
    verify: Callable[[bytes], object] | None = None,
) -> Comparison:
    """Compare, print the table, record it in the candidate's card, then promote or refuse.

    Raises GateRefused, leaving the alias untouched, when the candidate is worse on the test
    set or on the photo set than the version the alias points at. The benchmark is loaded
    (rendering the photos takes a while) only once name, version and alias are known good.
    """
    validate_alias(alias)
    registry.card(name, candidate)  # ModelNotFound, VersionNotFound
    comparison = compare(registry, name, candidate, alias, benchmark())
    print(comparison.table(), flush=True)
    registry.append_to_card(name, candidate, CARD_KEY, comparison.card_entry())
    current = comparison.current
    if current is not None and comparison.worse_on:
        old, new = comparison.scores[current], comparison.scores[candidate]
        reasons = ", ".join(
            f"{METRICS[metric]} {new[metric]:.4f} < {old[metric]:.4f}"
            for metric in comparison.worse_on
        )
        raise GateRefused(
            f"gate refused {name} version {candidate} for {alias}: worse than version "
            f"{current} on {reasons}; {alias} stays at {current}"
        )
    registry.set_alias(name, alias, candidate, verify=verify)
    return comparison
