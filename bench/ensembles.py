"""Test accuracy of registered versions alone, averaged together, and each with its mirror.

`.venv/bin/python -m bench.ensembles [--versions 5 6 7] [--model-dir models]`: what more compute
per image would buy on the test set, measured with networks the project has already trained;
every combination of the versions given.
Averaging the probabilities of several versions costs the sum of their times per image;
averaging an image's answer with its mirror's (test-time mirroring) costs twice one version's.
If neither reaches a target accuracy, no single network of that total size is likely to.
"""

import argparse
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

from bench.workload import ROOT
from service.preprocess import normalize
from service.registry import Registry
from service.runtime import offline_model
from training.data import find_data_dir, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="fashion-mnist")
    parser.add_argument("--versions", type=int, nargs="+", default=[5, 6, 7])
    args = parser.parse_args(argv)
    data_dir = find_data_dir()
    if data_dir is None:
        print("error: no Fashion-MNIST (apt-get install dataset-fashion-mnist)", file=sys.stderr)
        return 1
    data = load(data_dir)
    images, labels = normalize(data.test_images), data.test_labels
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    registry = Registry(args.model_dir)
    plain, flipped = {}, {}
    for version in args.versions:
        model = offline_model(registry.read_verified(args.model, version))
        plain[version], flipped[version] = model.run(images), model.run(mirrored)

    def accuracy(probabilities: np.ndarray) -> str:
        return f"{(probabilities.argmax(axis=1) == labels).mean():.4f}"

    print(f"{len(labels)} test images, model {args.model}; an average costs its networks' times.\n")
    print("| versions averaged | networks | test | with each mirror (every network run twice) |")
    print("|---|---:|---:|---:|")
    versions = args.versions
    groups = [g for size in range(1, len(versions) + 1) for g in combinations(versions, size)]
    for group in groups:
        alone = sum(plain[v] for v in group)
        both = alone + sum(flipped[v] for v in group)
        names = " + ".join(f"v{v}" for v in group)
        print(f"| {names} | {len(group)} | {accuracy(alone)} | {accuracy(both)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
