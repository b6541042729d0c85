"""The non-clothing development set: pictures a fashion classifier should say it does not know.

Non-clothing icons (animals, food, vehicles, faces, tools, buildings, plants) from the same npm
packages as the real-picture set, named in a hand-written CSV (data/non_clothing.csv: source,
picture, kind), fetched and rendered by evaluation.real_pictures' machinery; scikit-image's
sample photos and some of its bundled faces, read from the installed wheel (the `evaluation`
dependency group; nothing is downloaded); plus pictures made here, seeded: blank grounds, noise,
textures and text (fonts other than training's).

    python -m evaluation.non_clothing fetch                # render the icons (npm, rsvg-convert)
    python -m evaluation.non_clothing measure [--version N] # flagged shares and AUROC per source
"""

import argparse
import importlib.util
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation import real_pictures
from evaluation.gate import converted
from evaluation.novelty import set_figures
from training.drawn import random_texts

LABELS = real_pictures.HERE / "non_clothing.csv"
SYNTHETIC = "synthetic"
SKIMAGE = "scikit-image"
# The sample photos scikit-image ships inside its wheel (others it would download: never used).
SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "chessboard_GRAY.png",
    "clock_motion.png", "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png",
    "horse.png", "hubble_deep_field.jpg", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
    "motorcycle_left.png", "page.png", "phantom.png", "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip
SKIMAGE_FACES = 12  # of the 200 small faces in its lfw_subset.npy, every 16th
SEED = 7
SIDE = 256
# Text in fonts training's outliers never use.
FONTS = tuple(
    f"/usr/share/fonts/truetype/dejavu/{name}.ttf"
    for name in ("DejaVuSerif", "DejaVuSansMono-Bold", "DejaVuSerif-Italic")
)


@dataclass(frozen=True)
class Sample:
    """One picture of the set, encoded as a user would upload it."""

    source: str  # an icon package, or SYNTHETIC
    kind: str  # animal, food, ..., blank, noise, texture, text
    data: bytes


def read_entries(path: Path = LABELS) -> list[tuple[real_pictures.Entry, str]]:
    """The CSV's icons (as real-picture entries without a class) and their kinds."""
    import csv

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    sources = tuple(real_pictures.NPM_SOURCES)
    for number, row in enumerate(rows, start=2):
        if row["source"] not in sources:
            raise real_pictures.RealPicturesError(f"{path.name} line {number}: {row['source']!r}")
    return [(real_pictures.Entry(r["source"], r["picture"], -1), r["kind"]) for r in rows]


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def synthetic(seed: int = SEED) -> list[Sample]:
    """Blank grounds, noise, textures and text, seeded."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    samples = [Sample(SYNTHETIC, "blank", _png(np.full((SIDE, SIDE), v))) for v in (0, 128, 255)]
    for _ in range(6):
        samples.append(Sample(SYNTHETIC, "noise", _png(rng.uniform(0, 255, (SIDE, SIDE)))))
        blobs = np.kron(rng.uniform(0, 255, (16, 16)), np.ones((16, 16)))
        samples.append(Sample(SYNTHETIC, "noise", _png(blobs)))
    for _ in range(12):
        frequency, angle = rng.uniform(3, 20), rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)))
        checks = (np.floor(x * frequency) + np.floor(y * frequency)) % 2
        samples.append(Sample(SYNTHETIC, "texture", _png(127 + 127 * wave)))
        samples.append(Sample(SYNTHETIC, "texture", _png(255 * checks)))
    texts = random_texts(24, seed, FONTS)
    return samples + [Sample(SYNTHETIC, "text", data) for data in texts]


def skimage_samples() -> list[Sample]:
    """scikit-image's bundled photos as uploaded files, and some of its faces enlarged to
    100 px; RealPicturesError when scikit-image is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise real_pictures.RealPicturesError(
            "scikit-image is missing: `uv sync --group evaluation` (part of the test group)"
        )
    folder = Path(spec.origin).parent / "data"
    samples = [Sample(SKIMAGE, "photo", (folder / name).read_bytes()) for name in SKIMAGE_PHOTOS]
    faces = np.load(folder / "lfw_subset.npy")[: 16 * SKIMAGE_FACES : 16]  # floats in 0..1
    for face in faces:
        enlarged = Image.fromarray((face * 255).astype(np.uint8)).resize((100, 100))
        samples.append(Sample(SKIMAGE, "face", _png(np.asarray(enlarged))))
    return samples


def load(cache: str | Path | None = None) -> list[Sample]:
    """Every picture of the set; RealPicturesError saying how to fetch when icons are missing."""
    folder = real_pictures.cache_dir(cache) / "png"
    entries = read_entries()
    missing = [e.key for e, _ in entries if not (folder / f"{e.key}.png").is_file()]
    if missing:
        raise real_pictures.RealPicturesError(
            f"the non-clothing set is not fetched ({len(missing)} of {len(entries)} icons "
            f"missing in {folder}): run `python -m evaluation.non_clothing fetch`"
        )
    icons = [Sample(e.source, kind, (folder / f"{e.key}.png").read_bytes()) for e, kind in entries]
    return icons + skimage_samples() + synthetic()


def read(samples: list[Sample]) -> tuple[np.ndarray, list[int]]:
    """What photo mode makes of each sample, and the indices of those it accepted."""
    return converted([sample.data for sample in samples])


def by_source(
    samples: list[Sample], scores: np.ndarray, kept: list[int], limit: float, test: np.ndarray
) -> dict[str, dict[str, float | int | None]]:
    """Figures (evaluation.novelty.set_figures) for the whole set and per source."""
    sources = [sample.source for sample in samples]
    accepted = np.array([sources[i] for i in kept], dtype=object)
    figures = {"all": set_figures(scores, len(samples) - len(kept), limit, test)}
    for source in sorted(set(sources)):
        inside = accepted == source
        refused = sources.count(source) - int(inside.sum())
        figures[source] = set_figures(scores[inside], refused, limit, test)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.non_clothing")
    parser.add_argument("command", choices=("fetch", "measure"))
    parser.add_argument("--cache", help=f"default ${real_pictures.ENV_VAR}, else the default")
    parser.add_argument("--registry", default="models")
    parser.add_argument("--name", default="fashion-mnist")
    parser.add_argument("--version", type=int, help="default: the production version")
    args = parser.parse_args(argv)
    cache = real_pictures.cache_dir(args.cache)
    try:
        if args.command == "fetch":
            real_pictures.fetch_packages(cache)
            rendered = real_pictures.render_all(cache, [entry for entry, _ in read_entries()])
            print(f"rendered {rendered} new icons into {cache / 'png'}")
            return 0
        samples = load(cache)
    except real_pictures.RealPicturesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(measure(args.registry, args.name, args.version, samples), indent=1))
    return 0


def measure(
    registry_root: str, name: str, version: int | None, samples: list[Sample]
) -> dict[str, Any]:
    """A registered version's figures on the set from its exported graph (onnxruntime)."""
    from service.contract import DEFAULT_ALIAS, NOVELTY_NAME
    from service.preprocess import normalize
    from service.registry import Registry
    from service.runtime import offline_model
    from training import data

    registry = Registry(registry_root)
    version = version or registry.aliases(name)[DEFAULT_ALIAS]
    limit = registry.card(name, version)["novelty"]["threshold"]
    model = offline_model(registry.read_verified(name, version))
    found = data.find_data_dir(None)
    if found is None:
        raise SystemExit("no Fashion-MNIST test set found")
    test_images = normalize(data.load(found).test_images)
    (test,) = model.run_outputs(test_images, [NOVELTY_NAME])
    images, kept = read(samples)
    (scores,) = model.run_outputs(images, [NOVELTY_NAME])
    return {"version": version, "threshold": limit, **by_source(samples, scores, kept, limit, test)}


if __name__ == "__main__":
    sys.exit(main())
