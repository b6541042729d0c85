"""Accuracy on the real-picture development set per source and per class, version by version.

Run from the project root, after `python -m evaluation.real_pictures fetch`:
`.venv/bin/python -m bench.real_pictures` (--versions, --model-dir, --model, --cache). Reads
every picture as the service does with the default query (service.preprocess: photo mode) and
classifies it with each version in onnxruntime; prints Markdown tables: per source, per class,
and the wrong answers given with more than 90 % confidence.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.workload import ROOT
from evaluation.real_pictures import SOURCES, RealPicturesError, load
from service.contract import CLASS_NAMES
from service.errors import InvalidImage
from service.preprocess import preprocess_images
from service.registry import Registry
from service.runtime import OnnxModel, offline_model

CONFIDENT = 0.9


def _probabilities(model: OnnxModel, blobs: list[bytes]) -> np.ndarray:
    """Each picture's ten probabilities; a row of zeros where photo mode refuses it (a 422)."""
    rows = np.zeros((len(blobs), len(CLASS_NAMES)), np.float32)
    for index, blob in enumerate(blobs):
        try:
            rows[index] = model.run(preprocess_images([blob]))[0]
        except InvalidImage:
            continue
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="fashion-mnist")
    parser.add_argument("--versions", type=int, nargs="+", help="default: every version")
    parser.add_argument("--cache", help="the fetched set (default: evaluation.real_pictures)")
    args = parser.parse_args(argv)
    try:
        pictures = load(args.cache)
    except RealPicturesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    registry = Registry(args.model_dir)
    versions = args.versions or registry.versions(args.model)
    labels = np.array([p.entry.label for p in pictures])
    sources = np.array([p.entry.source for p in pictures])
    blobs = [p.data for p in pictures]
    answers = {}
    for version in versions:
        model = offline_model(registry.read_verified(args.model, version))
        answers[version] = _probabilities(model, blobs)
    right = {v: p.argmax(axis=1) == labels for v, p in answers.items()}
    head = " | ".join(f"v{v}" for v in versions)
    print(f"{len(pictures)} real pictures, model {args.model}, default query (photo mode).\n")
    print(f"| source | pictures | {head} |\n|---|---:|" + "---:|" * len(versions))
    for source in (*SOURCES, None):
        inside = sources == source if source else np.ones(len(labels), bool)
        cells = " | ".join(f"{right[v][inside].mean():.3f}" for v in versions)
        print(f"| {source or '**all**'} | {int(inside.sum())} | {cells} |")
    print(f"\n| class | pictures | {head} |\n|---|---:|" + "---:|" * len(versions))
    for label, name in enumerate(CLASS_NAMES):
        inside = labels == label
        if inside.any():
            cells = " | ".join(f"{right[v][inside].mean():.3f}" for v in versions)
            print(f"| {name} | {int(inside.sum())} | {cells} |")
    confident = " | ".join(
        str(int(((answers[v].max(axis=1) > CONFIDENT) & ~right[v]).sum())) for v in versions
    )
    print(f"| wrong with confidence > {CONFIDENT} | | {confident} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
