"""Write the page's gallery: real Fashion-MNIST test images as PNGs, and a manifest.

Run `make gallery` (or `python -m scripts.gallery`) after changing PER_CLASS; the PNGs are
committed, so the service never needs the data set.
"""

import argparse
import json
from pathlib import Path

from PIL import Image

from service.contract import CLASS_NAMES
from training.data import find_data_dir, load

GALLERY = Path(__file__).resolve().parents[1] / "service/http/static/ui/gallery"
PER_CLASS = 3


def test_picks(labels, per_class: int) -> list[int]:
    """The first per_class test images of each class, in class order (stable across runs)."""
    picks = []
    for class_id in range(len(CLASS_NAMES)):
        picks += [int(i) for i in (labels == class_id).nonzero()[0][:per_class]]
    return picks


def write_gallery(data_dir: Path | None, out: Path = GALLERY, per_class: int = PER_CLASS) -> list:
    """Write test-<index>.png per pick and gallery.json; returns the manifest entries."""
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
    (out / "gallery.json").write_text(json.dumps(entries, indent=1) + "\n")
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="the IDX files (default: as training)")
    args = parser.parse_args()
    print(f"wrote {len(write_gallery(args.data_dir))} images to {GALLERY}")


if __name__ == "__main__":
    main()
