"""The promotion gate: a candidate version takes an alias only if it is no worse than the
version the alias points at, on the test set, the mirrored test set, the project's photo set
and (when fetched) the real-picture development set. Worse on a set means below on accuracy
and significantly so on the same items (Paired.worse: a one-sided exact McNemar test at ALPHA).

Both versions are measured here, with onnxruntime as the service runs them (cards are not
trusted), on the 10,000 test images, the same images mirrored left-right, seeded product-photo
renderings of test items and pictures drawn by others (evaluation.real_pictures), the last two
put through photo mode as an upload with the default query would be. The comparison, per class
and per source, goes into the candidate's card, whatever the verdict.
"""

import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation import real_pictures
from evaluation.mcnemar import one_sided_p
from evaluation.photos import render_photos
from service.contract import CLASS_NAMES, IMAGE_SIDE, NOVELTY_NAME, validate_alias
from service.errors import FashionServeError, InvalidImage
from service.preprocess import normalize, preprocess_images
from service.registry import Registry
from service.runtime import OnnxModel, offline_model
from training import data

PHOTO_COUNT = 2000
BATCH = 1000  # images per onnxruntime call
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)
PHOTO_SEED = 0
CARD_KEY = "gate"  # the card's list of comparisons, one per gated promotion
METRICS = {
    "test_accuracy": "test set",
    "mirrored_test_accuracy": "test set, mirrored",
    "photo_accuracy": "photos, photo mode",
    "photo_raw_accuracy": "same items, 28x28",
    "real_accuracy": "real pictures",
}
# Where a candidate must not be worse (real pictures: when both sides were measured on them).
GATED = ("test_accuracy", "mirrored_test_accuracy", "photo_accuracy", "real_accuracy")
# A candidate below on a set is worse there only when a difference that large on those items
# would be this unlikely between two equally good versions; any lower accuracy at all refused
# candidates over a few photos of 2,000, well inside the noise of the set.
ALPHA = 0.05
RULE = {
    "worse_on_a_set": "lower accuracy and p <= alpha",
    "test": "one-sided exact McNemar: p = P(X >= b), X ~ Binomial(b + c, 1/2)",
    "b": "items only the current version reads right",
    "c": "items only the candidate reads right",
    "alpha": ALPHA,
}
REAL_PREFIX = "real_accuracy/"  # + source: the real-picture set per source
# A version that judges novelty must not flag more of the test set than this times its card's
# false-alarm target: its threshold would not mean what the card says.
NOVELTY_SLACK = 1.5


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
    # The real-picture development set as photo mode read it (refused pictures left out, as
    # for photos); empty when it is not fetched, and real_note says why.
    real_images: np.ndarray = field(default_factory=lambda: np.zeros((0, *IMAGE_SHAPE), "f4"))
    real_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    real_sources: tuple[str, ...] = ()  # of the accepted pictures
    real_all_sources: tuple[str, ...] = ()  # of every labelled picture, accepted or not
    real_all_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    real_note: str | None = None

    @property
    def photo_refusals(self) -> int:
        """Renderings photo mode refused: they count as wrong for every version."""
        return len(self.photo_indices) - len(self.photo_labels)


def converted(blobs: list[bytes]) -> tuple[np.ndarray, list[int]]:
    """What photo mode makes of each picture, and the indices of those it accepted."""
    converted, kept = [], []
    for index, blob in enumerate(blobs):
        try:
            converted.append(preprocess_images([blob])[0])
        except InvalidImage:  # e.g. no object found on its ground: a 422 in the service
            continue
        kept.append(index)
    return np.array(converted, dtype=np.float32).reshape(-1, *IMAGE_SHAPE), kept


def _real_pictures(cache: str | None, labels: Path) -> dict[str, object]:
    """The Benchmark fields of the real-picture set, or a note saying how to fetch it."""
    try:
        pictures = real_pictures.load(cache, labels)
    except real_pictures.RealPicturesError as exc:
        print(f"gate: without the real-picture set: {exc}", flush=True)
        return {"real_note": str(exc)}
    images, kept = converted([picture.data for picture in pictures])
    sources = tuple(picture.entry.source for picture in pictures)
    classes = np.array([picture.entry.label for picture in pictures], dtype=np.int64)
    return {
        "real_images": images,
        "real_labels": classes[kept],
        "real_sources": tuple(sources[i] for i in kept),
        "real_all_sources": sources,
        "real_all_labels": classes,
    }


def load_benchmark(
    data_dir: str | None = None,
    photo_count: int | None = None,
    photo_seed: int = PHOTO_SEED,
    real_pictures_dir: str | None = None,
    real_pictures_labels: Path = real_pictures.LABELS,
) -> Benchmark:
    """Read the test split, render and preprocess the photo set (seeded, deterministic) and read
    the real-picture set when it has been fetched.

    photo_count: the first that many test items (default PHOTO_COUNT); real_pictures_dir: the
    real-picture cache (default evaluation.real_pictures.cache_dir()) and real_pictures_labels
    its CSV.
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
    photo_images, kept = converted([photo.data for photo in photos])
    return Benchmark(
        test_images=normalize(dataset.test_images),
        test_labels=dataset.test_labels,
        photo_images=photo_images,
        photo_labels=np.array([photos[i].label for i in kept], dtype=np.int64),
        photo_indices=np.array([photo.index for photo in photos], dtype=np.int64),
        photo_kinds=sorted({photo.kind for photo in photos}),
        photo_seed=photo_seed,
        **_real_pictures(real_pictures_dir, real_pictures_labels),  # type: ignore[arg-type]
    )


def _predict(model: OnnxModel, images: np.ndarray) -> np.ndarray:
    """The top class of every image, batch by batch."""
    return np.concatenate(
        [model.run(images[i : i + BATCH]).argmax(axis=1) for i in range(0, len(images), BATCH)]
    )


def _right(predicted: np.ndarray, labels: np.ndarray, out_of: int) -> np.ndarray:
    """Whether each of `out_of` items is classified right; predictions may be fewer (the
    pictures photo mode refused, after those it accepted): those count wrong."""
    right = np.zeros(out_of, dtype=bool)
    right[: len(predicted)] = predicted == labels
    return right


def _share(right: np.ndarray) -> float:
    """The accuracy recorded for items read right or not: their share, to 6 places."""
    return round(float(right.mean()), 6)


def _accuracy(predicted: np.ndarray, labels: np.ndarray, out_of: int) -> float:
    """Share of `out_of` items classified right (predictions may be fewer: refused photos)."""
    return _share(_right(predicted, labels, out_of))


def _per_class(
    predicted: np.ndarray, labels: np.ndarray, all_labels: np.ndarray
) -> dict[str, float]:
    """Accuracy per class; all_labels: every item's class, refused ones included (wrong)."""
    right = np.bincount(labels[predicted == labels], minlength=len(CLASS_NAMES))
    total = np.bincount(all_labels, minlength=len(CLASS_NAMES))
    return {
        name: round(int(right[i]) / int(total[i]), 6)
        for i, name in enumerate(CLASS_NAMES)
        if total[i]
    }


Scores = dict[str, float]  # metric -> accuracy


@dataclass(frozen=True)
class Measured:
    """A version's accuracies (Scores), per class of each set (set -> class -> accuracy) and,
    on every GATED set, whether it reads each item right (metric -> bool per item)."""

    scores: Scores
    per_class: dict[str, dict[str, float]]
    right: dict[str, np.ndarray]


def measure(registry: Registry, name: str, version: int, benchmark: Benchmark) -> Measured:
    """A version's accuracies on the benchmark, from its verified model.onnx on onnxruntime."""
    model = offline_model(registry.read_verified(name, version))
    b = benchmark
    photos = len(b.photo_indices)
    # The photos' own dataset images are test-set rows: read their answers off the test run.
    tested = _predict(model, b.test_images)
    mirrored = _predict(model, np.ascontiguousarray(b.test_images[:, :, ::-1]))
    photographed = _predict(model, b.photo_images)
    raw = b.photo_indices
    right = {
        "test_accuracy": _right(tested, b.test_labels, len(b.test_labels)),
        "mirrored_test_accuracy": _right(mirrored, b.test_labels, len(b.test_labels)),
        "photo_accuracy": _right(photographed, b.photo_labels, photos),
    }
    scores = {
        **{metric: _share(items) for metric, items in right.items()},
        "photo_raw_accuracy": _accuracy(tested[raw], b.test_labels[raw], photos),
    }
    per_class = {
        "test": _per_class(tested, b.test_labels, b.test_labels),
        "test_mirrored": _per_class(mirrored, b.test_labels, b.test_labels),
        "photos": _per_class(photographed, b.photo_labels, b.test_labels[raw]),
    }
    if len(b.real_all_labels):
        real = _predict(model, b.real_images) if len(b.real_images) else np.zeros(0, np.int64)
        right["real_accuracy"] = _right(real, b.real_labels, len(b.real_all_labels))
        scores["real_accuracy"] = _share(right["real_accuracy"])
        sources = np.array(b.real_sources, dtype=object)
        for source in sorted(set(b.real_all_sources)):
            inside = sources == source
            out_of = b.real_all_sources.count(source)
            scores[REAL_PREFIX + source] = _accuracy(real[inside], b.real_labels[inside], out_of)
        per_class["real"] = _per_class(real, b.real_labels, b.real_all_labels)
    return Measured(scores, per_class, right)


def score(registry: Registry, name: str, version: int, benchmark: Benchmark) -> Scores:
    """A version's accuracies on the benchmark (measure() without the per-class breakdown)."""
    return measure(registry, name, version, benchmark).scores


@dataclass(frozen=True)
class Paired:
    """Two versions on one GATED set's items, item by item."""

    candidate: float  # accuracy
    current: float
    b: int  # items only the current version reads right
    c: int  # items only the candidate reads right

    @property
    def difference(self) -> float:
        return round(self.candidate - self.current, 6)

    @property
    def p(self) -> float:
        return one_sided_p(self.b, self.c)

    @property
    def worse(self) -> bool:
        """Below on accuracy (b > c: same items), by more than chance allows (p <= ALPHA)."""
        return self.b > self.c and self.p <= ALPHA

    def card(self) -> dict[str, float | int]:
        """As the card records it."""
        return {
            "candidate": self.candidate,
            "current": self.current,
            "difference": self.difference,
            "b": self.b,
            "c": self.c,
            "p": self.p,
        }


def item_by_item(candidate: Measured, current: Measured) -> dict[str, Paired]:
    """Every GATED set both versions were measured on, item by item."""
    return {
        metric: Paired(
            candidate.scores[metric],
            current.scores[metric],
            b=int((current.right[metric] & ~candidate.right[metric]).sum()),
            c=int((candidate.right[metric] & ~current.right[metric]).sum()),
        )
        for metric in GATED
        if metric in candidate.right and metric in current.right
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
    per_class: dict[int, dict[str, dict[str, float]]]  # version -> Measured.per_class
    paired: dict[str, Paired]  # GATED metric -> the two versions on it (empty: no current)

    @property
    def worse_on(self) -> list[str]:
        """The gated metrics on which the candidate is worse than the current version."""
        return [metric for metric, pair in self.paired.items() if pair.worse]

    @property
    def passed(self) -> bool:
        return not self.worse_on

    def table(self) -> str:
        """The comparison as a plain-text table, one row per metric."""
        versions = [self.candidate] + ([self.current] if self.current is not None else [])
        header = ["", f"candidate v{self.candidate}"]
        if self.current is not None:
            header += [f"{self.alias} v{self.current}", "difference", "b", "c", "p"]
        rows = [header]
        labels = {**METRICS}
        for metric in self.scores[self.candidate]:
            if metric.startswith(REAL_PREFIX):
                labels[metric] = f"  {metric.removeprefix(REAL_PREFIX)}"
        for metric, label in labels.items():
            if metric not in self.scores[self.candidate]:
                continue
            row = [label] + [f"{self.scores[v][metric]:.4f}" for v in versions]
            if self.current is not None:
                difference = self.scores[self.candidate][metric] - self.scores[self.current][metric]
                row.append(f"{difference:+.4f}")
                pair = self.paired.get(metric)
                row += [str(pair.b), str(pair.c), f"{pair.p:.3g}"] if pair else ["", "", ""]
            rows.append(row)
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = []
        for row in rows:
            cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
            cells[0] = row[0].ljust(widths[0])
            lines.append("  ".join(cells).rstrip())
        if self.current is not None:
            lines.append(f"b: items only v{self.current} reads right, c: only v{self.candidate}")
            lines.append(f"worse on a set: lower and p <= {ALPHA:g}, {RULE['test']}")
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
            "rule": RULE,
            "paired": {metric: pair.card() for metric, pair in self.paired.items()},
            "scores": {str(v): s for v, s in self.scores.items()},
            "per_class": {str(v): p for v, p in self.per_class.items()},
            "test_images": len(benchmark.test_labels),
            "photos": {
                "count": len(benchmark.photo_indices),
                "seed": benchmark.photo_seed,
                "kinds": benchmark.photo_kinds,
                "refused_by_photo_mode": benchmark.photo_refusals,
                "preprocessing": "service.preprocess.preprocess_images defaults (mode auto)",
            },
            "real_pictures": {
                "count": len(benchmark.real_all_labels),
                "sources": dict(Counter(benchmark.real_all_sources)),
                "refused_by_photo_mode": len(benchmark.real_all_labels)
                - len(benchmark.real_labels),
                "labels": "evaluation/data/real_pictures.csv",
                "note": benchmark.real_note,
            },
        }


def compare(
    registry: Registry, name: str, candidate: int, alias: str, benchmark: Benchmark
) -> Comparison:
    """Measure the candidate and the alias's current version (if any) on the benchmark."""
    current = registry.aliases(name).get(alias)
    versions = {candidate} | ({current} if current is not None else set())
    measured = {v: measure(registry, name, v, benchmark) for v in sorted(versions)}
    scores = {v: m.scores for v, m in measured.items()}
    per_class = {v: m.per_class for v, m in measured.items()}
    pairs = {} if current is None else item_by_item(measured[candidate], measured[current])
    return Comparison(name, alias, candidate, current, scores, benchmark, per_class, pairs)


def test_flagged(registry: Registry, name: str, version: int, benchmark: Benchmark) -> float | None:
    """Share of the test images the version's graph flags by its card's threshold (None: the
    version does not judge novelty)."""
    entry = registry.card(name, version).get("novelty")
    if not entry:
        return None
    model = offline_model(registry.read_verified(name, version))
    images = benchmark.test_images
    scores = np.concatenate(
        [
            model.run_outputs(images[i : i + BATCH], [NOVELTY_NAME])[0]
            for i in range(0, len(images), BATCH)
        ]
    )
    return float((scores > entry["threshold"]).mean())


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

    Raises GateRefused, leaving the alias untouched, when the candidate is worse (Paired.worse)
    on any GATED set than the version the alias points at. The benchmark is loaded
    (rendering the photos takes a while) only once name, version and alias are known good.
    """
    validate_alias(alias)
    registry.card(name, candidate)  # ModelNotFound, VersionNotFound
    comparison = compare(registry, name, candidate, alias, benchmark())
    print(comparison.table(), flush=True)
    registry.append_to_card(name, candidate, CARD_KEY, comparison.card_entry())
    current = comparison.current
    if current is not None and comparison.worse_on:
        reasons = ", ".join(
            f"{METRICS[metric]} {pair.candidate:.4f} < {pair.current:.4f} "
            f"(b={pair.b}, c={pair.c}, p={pair.p:.3g})"
            for metric, pair in comparison.paired.items()
            if pair.worse
        )
        raise GateRefused(
            f"gate refused {name} version {candidate} for {alias}: worse than version "
            f"{current} on {reasons}; {alias} stays at {current}"
        )
    flagged = test_flagged(registry, name, candidate, comparison.benchmark)
    target = registry.card(name, candidate).get("novelty", {}).get("false_alarm_target", 0.0)
    if flagged is not None and flagged > NOVELTY_SLACK * target:
        raise GateRefused(
            f"gate refused {name} version {candidate} for {alias}: it flags {flagged:.2%} of the "
            f"test images, more than {NOVELTY_SLACK:g} x its false-alarm target {target:.0%}; "
            f"{alias} stays at {current}"
        )
    registry.set_alias(name, alias, candidate, verify=verify)
    return comparison
