"""Write the page's gallery: real test images, product-photo renderings of a few, pictures
drawn by others (the real-picture development set), a manifest.

Run `make gallery` (or `python -m scripts.gallery`) after changing PER_CLASS or REAL_PICKS; the
PNGs are committed, so the service never needs the data sets. Without the real-picture set
fetched (`python -m evaluation.real_pictures fetch`) the drawn pictures already in the gallery
are kept as they are.
"""

import argparse
import io
import json
import shutil
from pathlib import Path

from PIL import Image

from evaluation import real_pictures
from evaluation.photos import KINDS, render_photos
from service.contract import CLASS_NAMES
from training.data import find_data_dir, load

GALLERY = Path(__file__).resolve().parents[1] / "service/http/static/ui/gallery"
PER_CLASS = 3
# Photo renderings of the first test items, one of each of these kinds (evaluation/photos.py
# cycles through its kinds by item index); the cut-out is left out for its 40 KB.
PHOTO_KINDS = ("white-jpeg", "grey-ground", "gradient", "vignette", "exif-rotated", "tinted")
PHOTO_SEED = 0
PNG_SIGNATURE = b"\x89PNG"
# A handful of drawn pictures (source, picture in evaluation/data/real_pictures.csv): right-
# facing shoes, a silhouette, flat emoji; shown at REAL_SIDE pixels with their licence's credit.
REAL_PICKS = (
    ("fluent-emoji-flat", "running-shoe"),
    ("emojione", "womans-boot"),
    ("fxemoji", "sandals"),
    ("game-icons", "hoodie"),
    ("emojione-v1", "jeans"),
    ("openclipart", "people/clothing/t-shirt_02.svg"),
)
REAL_SIDE = 128


def real_entries(out: Path) -> list[dict]:
    """Write real-<key>.png per pick and return their entries; without the set fetched, the
    committed gallery's drawn pictures, copied into out."""
    try:
        pictures = {(p.entry.source, p.entry.picture): p for p in real_pictures.load()}
    except real_pictures.RealPicturesError as exc:
        print(f"keeping the gallery's drawn pictures: {exc}")
        committed = json.loads((GALLERY / "gallery.json").read_text())
        kept = [entry for entry in committed if entry["kind"] == "real"]
        for entry in kept:
            if out.resolve() != GALLERY.resolve():
                shutil.copyfile(GALLERY / entry["file"], out / entry["file"])
        return kept
    entries = []
    for pick in REAL_PICKS:
        picture = pictures[pick]
        name = f"real-{picture.entry.key}.png"
        image = Image.open(io.BytesIO(picture.data)).convert("RGB")
        image.thumbnail((REAL_SIDE, REAL_SIDE), Image.Resampling.LANCZOS)
        image.save(out / name, optimize=True)
        entries.append(
            {
                "file": name,
                "kind": "real",
                "class_id": picture.entry.label,
                "label": CLASS_NAMES[picture.entry.label],
                "source": picture.entry.source,
                "credit": real_pictures.CREDITS[picture.entry.source],
            }
        )
    return entries


def test_picks(labels, per_class: int) -> list[int]:
    """The first per_class test images of each class, in class order (stable across runs)."""
    picks = []
    for class_id in range(len(CLASS_NAMES)):
        picks += [int(i) for i in (labels == class_id).nonzero()[0][:per_class]]
    return picks


def write_gallery(data_dir: Path | None, out: Path = GALLERY, per_class: int = PER_CLASS) -> list:
    """Write test-<index>.png per pick, photo-<index>.* per rendering, gallery.json; the entries."""
    data = load(find_data_dir(data_dir) or data_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for index in test_picks(data.test_labels, per_class):
        name = f"test-{index}.png"
        Image.fromarray(data.test_images[index], "L").save(out / name, optimize=True)
        class_id = int(data.test_labels[index])
        entries.append(
            {
                "file": name,
                "kind": "test",
                "index": index,
                "class_id": class_id,
                "label": CLASS_NAMES[class_id],
            }
        )
    for photo in render_photos(data.test_images, data.test_labels, len(KINDS), seed=PHOTO_SEED):
        if photo.kind not in PHOTO_KINDS:
            continue
        suffix = "png" if photo.data.startswith(PNG_SIGNATURE) else "jpg"
        name = f"photo-{photo.index}.{suffix}"
        (out / name).write_bytes(photo.data)
        entries.append(
            {
                "file": name,
                "kind": "photo",
                "index": photo.index,
                "class_id": photo.label,
                "label": CLASS_NAMES[photo.label],
                "style": photo.kind,
            }
        )
    entries += real_entries(out)
    (out / "gallery.json").write_text(json.dumps(entries, indent=1) + "\n")
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="the IDX files (default: as training)")
    args = parser.parse_args()
    print(f"wrote {len(write_gallery(args.data_dir))} images to {GALLERY}")


if __name__ == "__main__":
    main()
