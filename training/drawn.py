"""Training-only drawn pictures from icon packages no development or held-out set uses.

Two kinds, both fetched with npm and rendered as the real-picture set is (evaluation.real_pictures:
256 px on white by rsvg-convert, then photo mode as for any upload):
- outliers for outlier exposure: non-clothing icons (names that may show clothing, bags or
  box-like things are left out by NOT_OUTLIER) and rendered words and numbers; the network is
  taught to spread its probabilities evenly over them, which lowers their energy score;
- clothing icons of those packages, labelled by hand in data/drawn_clothing.csv, mixed into the
  training set: views of clothing Fashion-MNIST never shows. Labelled as Fashion-MNIST's classes
  would take them: high heels, flip-flops, slides and sandals seen from above or the side → Sandal;
  sneakers, running shoes, cleats → Sneaker; collared shirts, shirts with a tie → Shirt; tank
  tops, sleeveless sport shirts → T-shirt/top; hoodies, sweaters, cardigans → Pullover; jackets,
  suit jackets, windbreakers, lab coats → Coat; shorts → Trouser; handbags, backpacks,
  briefcases, shopping bags → Bag. Left out, having no class or no clear one: skirts, ties alone,
  socks, hats, waistcoats, suitcases, wallets, closed slippers, studded high-top cleats, pairs.

    python -m training.drawn fetch             # npm pack the packages, render, cache the arrays
    python -m training.drawn sheet --out x.png # the same, then a contact sheet of the clothing

Credits for the packages: data/ATTRIBUTION.md.
"""

import argparse
import hashlib
import io
import json
import random
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from evaluation import real_pictures
from evaluation.gate import converted
from service.contract import CLASS_NAMES, NUM_CLASSES

HERE = Path(__file__).parent / "data"
CLOTHING = HERE / "drawn_clothing.csv"
# Pinned npm packages: source name → package@version (licences in data/ATTRIBUTION.md).
PACKAGES = {
    "mdi": "@iconify-json/mdi@1.2.3",
    "ph": "@iconify-json/ph@1.2.2",
    "fa6-solid": "@iconify-json/fa6-solid@1.2.4",
    "streamline-emojis": "@iconify-json/streamline-emojis@1.2.4",
    "arcticons": "@iconify-json/arcticons@1.2.58",
    "bx": "@iconify-json/bx@1.2.3",
    "carbon": "@iconify-json/carbon@1.2.30",
    "flat-color-icons": "@iconify-json/flat-color-icons@1.2.3",
    "fluent": "@iconify-json/fluent@1.2.60",
    "hugeicons": "@iconify-json/hugeicons@1.2.35",
    "icon-park": "@iconify-json/icon-park@1.2.4",
    "icon-park-outline": "@iconify-json/icon-park-outline@1.2.4",
    "icon-park-twotone": "@iconify-json/icon-park-twotone@1.2.4",
    "iconoir": "@iconify-json/iconoir@1.2.11",
    "ion": "@iconify-json/ion@1.2.7",
    "la": "@iconify-json/la@1.2.1",
    "lucide": "@iconify-json/lucide@1.2.137",
    "lucide-lab": "@iconify-json/lucide-lab@1.2.3",
    "material-symbols": "@iconify-json/material-symbols@1.2.98",
    "mingcute": "@iconify-json/mingcute@1.2.8",
    "ri": "@iconify-json/ri@1.2.10",
    "solar": "@iconify-json/solar@1.2.13",
    "streamline-color": "@iconify-json/streamline-color@1.2.2",
    "streamline-flex-color": "@iconify-json/streamline-flex-color@1.2.2",
    "streamline-plump-color": "@iconify-json/streamline-plump-color@1.2.2",
    "tabler": "@iconify-json/tabler@1.2.41",
    "uil": "@iconify-json/uil@1.2.3",
    "icon-park-solid": "@iconify-json/icon-park-solid@1.2.4",
    "material-symbols-light": "@iconify-json/material-symbols-light@1.2.94",
    "temaki": "@iconify-json/temaki@1.2.6",
    "pepicons-pop": "@iconify-json/pepicons-pop@1.2.4",
    "pepicons-pencil": "@iconify-json/pepicons-pencil@1.2.4",
    "pepicons-print": "@iconify-json/pepicons-print@1.2.2",
    "maki": "@iconify-json/maki@1.2.5",
    "fa7-solid": "@iconify-json/fa7-solid@1.2.5",
    "famicons": "@iconify-json/famicons@1.2.2",
    "majesticons": "@iconify-json/majesticons@1.2.5",
    "circum": "@iconify-json/circum@1.2.2",
    "gravity-ui": "@iconify-json/gravity-ui@1.2.15",
    "streamline": "@iconify-json/streamline@1.2.5",
    "streamline-flex": "@iconify-json/streamline-flex@1.2.3",
    "pixelarticons": "@iconify-json/pixelarticons@1.2.9",
    "lineicons": "@iconify-json/lineicons@1.2.6",
    "flowbite": "@iconify-json/flowbite@1.2.7",
    "lsicon": "@iconify-json/lsicon@1.2.5",
    "rivet-icons": "@iconify-json/rivet-icons@1.2.2",
    "fluent-mdl2": "@iconify-json/fluent-mdl2@1.2.1",
    "bxs": "@iconify-json/bxs@1.2.3",
}
# Outliers come from the packages the labelled clothing comes from too, so that a drawing style
# alone never says "clothing": line, filled, two-tone and colour sets alike.
OUTLIERS_PER_PACKAGE = {
    "mdi": 1200, "ph": 800, "fa6-solid": 800, "streamline-emojis": 800,
    "tabler": 300, "hugeicons": 300, "icon-park": 200, "solar": 200, "mingcute": 200,
    "material-symbols": 200, "streamline-color": 200, "fluent": 200,
}  # fmt: skip
TEXTS = 600
SEED = 1
# Icon names that may show clothing, a bag or something shaped like one: never an outlier.
NOT_OUTLIER = (
    "shirt|dress|coat|shoe|boot|sandal|bag|purse|pouch|sneaker|jean|trouser|pant|sweater|hoodie|"
    "kimono|bikini|suit|tie|glove|sock|hat|cap|glasses|scarf|jacket|heel|skirt|vest|clutch|"
    "backpack|briefcase|luggage|bra|swim|shorts|cloth|wear|hanger|wardrobe|wallet|shopping|tote|"
    "apparel|fashion|garment|mitten|slipper|footprint|foot|basket|bucket|trash|delete|lock|"
    "archive|box|package|cart|gift|gym|tank|jersey|uniform|sari|robe|pajama|polo|tuxedo|blouse|"
    "cardigan|sweat|legging|dungaree|overall|jumper|turtleneck|neck|windbreaker|flip-flop|cleat|"
    "spiked|ballet|mall|satchel|commuter|underpants|panties|brief|diaper|lingerie|armou?r|"
    "cloak|gown|poncho|cape|apron|tailor|sewing|mannequin|checkroom|styler|laundry|dry-clean|closet|"
    "dresser|iron|work|business|suitcase|baggage|trolley|carry"
)
# Training text uses these fonts; the non-clothing development set uses others.
FONTS = tuple(
    f"/usr/share/fonts/truetype/dejavu/{name}.ttf"
    for name in ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSansCondensed")
)


@dataclass(frozen=True)
class Drawn:
    """The rendered training pictures as photo mode reads them, float32 [.,28,28] in 0..1."""

    outliers: np.ndarray
    clothing: np.ndarray
    clothing_labels: np.ndarray  # class ids

    def card(self) -> dict[str, object]:
        """The card's record of what was mixed in."""
        counts = np.bincount(self.clothing_labels, minlength=NUM_CLASSES).tolist()
        return {
            "packages": PACKAGES,
            "outliers": len(self.outliers),
            "outlier_texts": TEXTS,
            "clothing": len(self.clothing),
            "clothing_per_class": dict(zip(CLASS_NAMES, counts, strict=True)),
            "clothing_labels": "training/data/drawn_clothing.csv",
        }

    def sheet(self, per_row: int = 24, zoom: int = 2) -> Image.Image:
        """A contact sheet of the labelled clothing as photo mode reads it, one block of rows
        per class under its name: how the labels are checked by eye."""
        side, header = 28 * zoom, 14
        blocks = []
        for label, name in enumerate(CLASS_NAMES):
            images = self.clothing[self.clothing_labels == label]
            rows = max(1, -(-len(images) // per_row))
            block = Image.new("L", (per_row * side, header + rows * side), 255)
            ImageDraw.Draw(block).text((2, 1), f"{name} ({len(images)})", fill=0)
            for index, image in enumerate(images):
                tile = Image.fromarray((image * 255).astype(np.uint8)).resize((side, side))
                block.paste(tile, ((index % per_row) * side, header + (index // per_row) * side))
            blocks.append(block)
        sheet = Image.new("L", (per_row * side, sum(b.height for b in blocks)), 255)
        top = 0
        for block in blocks:
            sheet.paste(block, (0, top))
            top += block.height
        return sheet


def arrays_file(folder: Path) -> Path:
    """The cached arrays' file, named for everything that decides them (packages, samples,
    labels, exclusions): editing the CSV or a pin makes the next load build anew, never reuse."""
    recipe = json.dumps([PACKAGES, OUTLIERS_PER_PACKAGE, TEXTS, SEED, NOT_OUTLIER, FONTS])
    digest = hashlib.sha256(recipe.encode() + CLOTHING.read_bytes()).hexdigest()[:12]
    return folder / f"drawn-training-{digest}.npz"


def text_picture(text: str, font: str, size: int, where: tuple[int, int]) -> bytes:
    """PNG of black text on a white 256-pixel square."""
    image = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(image).text(where, text, fill=(0, 0, 0), font=ImageFont.truetype(font, size))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def random_texts(count: int, seed: int, fonts: tuple[str, ...]) -> list[bytes]:
    """count pictures of random words (letters) or numbers, seeded."""
    rng = random.Random(seed)  # noqa: S311 (a seeded sample, not a secret)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    pictures = []
    for _ in range(count):
        if rng.random() < 0.7:
            text = "".join(rng.choice(letters) for _ in range(rng.randint(2, 8)))
        else:
            text = str(rng.randint(0, 9999))
        where = (rng.randint(0, 60), rng.randint(0, 120))
        pictures.append(text_picture(text, rng.choice(fonts), rng.randint(30, 120), where))
    return pictures


def outlier_svgs(cache: Path) -> list[bytes]:
    """A seeded sample of each package's non-clothing icons, as SVG documents."""
    excluded, svgs = re.compile(NOT_OUTLIER), []
    rng = random.Random(SEED)  # noqa: S311 (a seeded sample, not a secret)
    for source, count in OUTLIERS_PER_PACKAGE.items():
        icons = real_pictures.icon_set(cache, source)
        names = [
            name
            for name, icon in sorted(icons["icons"].items())
            if not excluded.search(name) and not (icon.get("hFlip") or icon.get("vFlip"))
            and not icon.get("rotate")
        ]  # fmt: skip
        rng.shuffle(names)
        svgs += [real_pictures.iconify_svg(icons, name).encode() for name in names[:count]]
    return svgs


def clothing_svgs(cache: Path) -> tuple[list[bytes], np.ndarray]:
    """The labelled clothing icons (data/drawn_clothing.csv) and their class ids."""
    entries = real_pictures.read_labels(CLOTHING, tuple(PACKAGES))
    icon_sets: dict[str, dict[str, Any]] = {}
    svgs = [real_pictures.source_svg(cache, entry, icon_sets) for entry in entries]
    return svgs, np.array([entry.label for entry in entries], dtype=np.int64)


def _render(svgs: list[bytes]) -> list[bytes]:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(real_pictures.render_svg, svgs))


def build(cache: Path) -> Drawn:
    """Fetch the packages (npm) if needed, render every picture and read it as photo mode does."""
    real_pictures.fetch_packages(cache, PACKAGES)
    outliers, _ = converted(_render(outlier_svgs(cache)) + random_texts(TEXTS, SEED, FONTS))
    svgs, labels = clothing_svgs(cache)
    clothing, kept = converted(_render(svgs))
    return Drawn(outliers, clothing, labels[kept])


def load(cache: str | Path | None = None) -> Drawn:
    """The cached arrays, built (fetching with npm) the first time."""
    folder = real_pictures.cache_dir(cache)
    path = arrays_file(folder)
    if not path.is_file():
        drawn = build(folder)
        partial = path.with_suffix(".tmp.npz")
        np.savez_compressed(partial, **drawn.__dict__)
        partial.replace(path)
    with np.load(path) as arrays:
        return Drawn(**{key: arrays[key] for key in ("outliers", "clothing", "clothing_labels")})


def mixed(
    images: np.ndarray,
    labels: np.ndarray,
    drawn: Drawn,
    outlier_weight: float,
    repeat: int,
    targets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, soft labels [N,10], loss weights) of the dataset images (their targets, else
    one-hot labels) plus the drawn clothing (one-hot, each repeated `repeat` times) and the
    outliers (uniform rows).

    Each outlier weighs outlier_weight x len(images) / (10 x outliers): all together they weigh
    outlier_weight / 10 of the dataset images, whatever their number.
    """
    eye = np.eye(NUM_CLASSES, dtype=np.float32)
    own = eye[labels] if targets is None else targets
    parts = [(images, own, np.ones(len(images), np.float32))]
    if repeat:
        clothing = np.repeat(drawn.clothing, repeat, axis=0)
        clothing_labels = np.repeat(drawn.clothing_labels, repeat)
        parts.append((clothing, eye[clothing_labels], np.ones(len(clothing), np.float32)))
    if outlier_weight:
        count = len(drawn.outliers)
        each = outlier_weight * len(images) / (NUM_CLASSES * count)
        uniform = np.full((count, NUM_CLASSES), 1 / NUM_CLASSES, np.float32)
        parts.append((drawn.outliers, uniform, np.full(count, each, np.float32)))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.drawn")
    parser.add_argument("command", choices=("fetch", "sheet"))
    parser.add_argument("--cache", help=f"default ${real_pictures.ENV_VAR}, else the default")
    parser.add_argument("--out", default="drawn-clothing.png", help="sheet: the PNG to write")
    args = parser.parse_args(argv)
    try:
        drawn = load(args.cache)
    except real_pictures.RealPicturesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(drawn.outliers)} outliers, {len(drawn.clothing)} labelled clothing pictures")
    if args.command == "sheet":
        drawn.sheet().save(args.out)
        print(f"contact sheet: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
