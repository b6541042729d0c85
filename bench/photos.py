"""Accuracy on product photos by kind of variation, against the same items as 28×28 images.

`.venv/bin/python -m bench.photos` (--count, --seed, --model-dir, --model, --version): renders
test items with evaluation.photos, reads them as the service does and classifies them.
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.workload import ROOT
from evaluation.photos import KINDS, render_photos
from service.contract import DEFAULT_ALIAS
from service.errors import InvalidImage
from service.preprocess import normalize, preprocess_images
from service.registry import Registry
from service.runtime import OnnxModel, offline_model
from training.data import DEFAULT_DIR, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2200, help="photos (default 2,200)")
    parser.add_argument("--seed", type=int, default=0, help="renderer seed (default 0)")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="fashion-mnist")
    parser.add_argument("--version", type=int, help="default: the production alias")
    args = parser.parse_args()

    registry = Registry(args.model_dir)
    version = args.version or registry.resolve(args.model, alias=DEFAULT_ALIAS)
    model = offline_model(registry.model_path(args.model, version).read_bytes())
    data = load(DEFAULT_DIR)
    started = time.perf_counter()
    photos = render_photos(data.test_images, data.test_labels, args.count, seed=args.seed)
    rendered = time.perf_counter() - started

    right: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    seconds = 0.0
    for photo in photos:
        raw = data.test_images[photo.index][None]
        right["28×28 image"][photo.kind].append(_label(model, normalize(raw)) == photo.label)
        started = time.perf_counter()
        right["photo (default)"][photo.kind].append(_classify(model, photo.data) == photo.label)
        seconds += time.perf_counter() - started
        as_is = _classify(model, photo.data, mode="dataset")
        right["?mode=dataset"][photo.kind].append(as_is == photo.label)

    columns = list(right)
    print(
        f"{len(photos):,} photos of the first {len(photos):,} test items (seed {args.seed}), "
        f"model {args.model} v{version}; rendering took {rendered:.1f} s, reading and "
        f"classifying {seconds / len(photos) * 1e3:.1f} ms per photo.\n"
    )
    print("| kind | photos | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for kind in KINDS:
        cells = " | ".join(f"{np.mean(right[c][kind]):.3f}" for c in columns)
        print(f"| {kind} | {len(right[columns[0]][kind])} | {cells} |")
    totals = [np.mean([x for kind in KINDS for x in right[c][kind]]) for c in columns]
    print(f"| **all** | {len(photos)} | " + " | ".join(f"**{t:.3f}**" for t in totals) + " |")


def _label(model: OnnxModel, images: np.ndarray) -> int:
    return int(model.run(images)[0].argmax())


def _classify(model: OnnxModel, data: bytes, mode: str = "auto") -> int:
    """The class the service answers for an upload; -1 where it answers an error (422)."""
    try:
        return _label(model, preprocess_images([data], mode=mode))
    except InvalidImage:
        return -1


if __name__ == "__main__":
    sys.exit(main())
