"""The real-picture development set: clothing drawn by others, fetched, rendered and labelled.

Pictures nobody in this project drew: emoji and icon sets from npm (iconify's JSON packages,
one SVG body per icon) and Debian's openclipart-svg. A hand-written CSV (data/real_pictures.csv:
source, picture, class) picks the clothing among them; data/ATTRIBUTION.md credits the authors.
Each picture is rendered to a 256-pixel PNG on white with rsvg-convert (Debian's librsvg2-bin),
as a user would save an icon, and then read like any upload (service.preprocess, default query).

    python -m evaluation.real_pictures fetch      # npm pack into the cache, render every picture
    python -m evaluation.real_pictures list       # what is labelled, per source and class

Nothing here downloads unless asked: `fetch` runs npm; loading reads the cache folder
($FASHION_REAL_PICTURES_DIR, default ~/.cache/fashion-serve/real-pictures) and says how to fill
it when it is empty.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from service.contract import CLASS_NAMES
from service.errors import FashionServeError

HERE = Path(__file__).parent / "data"
LABELS = HERE / "real_pictures.csv"
ENV_VAR = "FASHION_REAL_PICTURES_DIR"
DEFAULT_CACHE = Path.home() / ".cache" / "fashion-serve" / "real-pictures"
OPENCLIPART_ROOT = Path("/usr/share/openclipart/svg")
RENDER_SIDE = 256
RENDERER = "rsvg-convert"  # Debian bookworm's librsvg2-bin 2.54 (apt-get install librsvg2-bin)
# Pinned npm packages: source name → package@version. Their licences are in ATTRIBUTION.md.
NPM_SOURCES = {
    "fxemoji": "@iconify-json/fxemoji@1.2.2",
    "emojione": "@iconify-json/emojione@1.2.3",
    "emojione-v1": "@iconify-json/emojione-v1@1.2.3",
    "fluent-emoji-flat": "@iconify-json/fluent-emoji-flat@1.2.6",
    "game-icons": "@iconify-json/game-icons@1.2.4",
}
OPENCLIPART = "openclipart"  # apt-get install openclipart-svg
SOURCES = (*NPM_SOURCES, OPENCLIPART)
# The credit each licence asks for where a picture is shown (data/ATTRIBUTION.md in full).
CREDITS = {
    "fxemoji": "Firefox OS Emoji © Mozilla, Apache-2.0",
    "emojione": "Emoji One, CC BY 4.0",
    "emojione-v1": "Emoji One, CC BY-SA 4.0",
    "fluent-emoji-flat": "Fluent Emoji © Microsoft, MIT",
    "game-icons": "game-icons.net (Lorc, Delapouite and contributors), CC BY 3.0",
    OPENCLIPART: "Openclipart, public domain",
}
FETCH = "python -m evaluation.real_pictures fetch"


class RealPicturesError(FashionServeError):
    """The development set cannot be fetched, rendered or read."""


@dataclass(frozen=True)
class Entry:
    """One labelled picture of the CSV."""

    source: str  # one of SOURCES
    picture: str  # the icon's name in its set, or a path under OPENCLIPART_ROOT
    label: int  # class id

    @property
    def key(self) -> str:
        """A file-name-safe identifier, also the rendered PNG's name."""
        return f"{self.source}--{self.picture.replace('/', '_').removesuffix('.svg')}"


@dataclass(frozen=True)
class Picture:
    """A rendered picture as a user would upload it."""

    entry: Entry
    data: bytes  # PNG


def read_labels(path: Path = LABELS, sources: tuple[str, ...] = SOURCES) -> list[Entry]:
    """The CSV's entries; RealPicturesError on a source not in sources, an unknown class or a
    repeated row."""
    entries, seen = [], set()
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            source, picture, name = row["source"], row["picture"], row["class"]
            if source not in sources or name not in CLASS_NAMES:
                raise RealPicturesError(f"{path.name} line {number}: unknown {source!r}/{name!r}")
            entry = Entry(source, picture, CLASS_NAMES.index(name))
            if entry.key in seen:
                raise RealPicturesError(f"{path.name} line {number}: {picture!r} twice")
            seen.add(entry.key)
            entries.append(entry)
    return entries


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where packages and renderings live: explicit, else $FASHION_REAL_PICTURES_DIR, else
    DEFAULT_CACHE."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_CACHE)


def iconify_svg(icon_set: dict[str, Any], name: str) -> str:
    """A standalone SVG document of one icon of an iconify JSON set (aliases not followed)."""
    icon = icon_set["icons"].get(name)
    if icon is None:
        raise RealPicturesError(f"no icon {name!r} in {icon_set.get('prefix')!r}")
    if icon.get("rotate") or icon.get("hFlip") or icon.get("vFlip"):
        raise RealPicturesError(f"icon {name!r} is transformed: pick another one")
    left, top = icon.get("left", icon_set.get("left", 0)), icon.get("top", icon_set.get("top", 0))
    width = icon.get("width", icon_set.get("width", 16))
    height = icon.get("height", icon_set.get("height", 16))
    box = quoteattr(f"{left} {top} {width} {height}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox={box} width="{width}" height="{height}">{icon["body"]}</svg>'
    )


def render_svg(svg: bytes, side: int = RENDER_SIDE) -> bytes:
    """PNG of an SVG fitted into side × side pixels (aspect kept) on white, by rsvg-convert."""
    if shutil.which(RENDERER) is None:
        raise RealPicturesError(f"{RENDERER} is missing: apt-get install librsvg2-bin")
    done = subprocess.run(
        [RENDERER, "--width", str(side), "--height", str(side), "--keep-aspect-ratio",
         "--background-color", "white", "--format", "png"],
        input=svg, capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    if done.returncode != 0 or not done.stdout:
        raise RealPicturesError(f"{RENDERER} failed: {done.stderr.decode(errors='replace')[:200]}")
    return done.stdout


def icon_set(cache: Path, source: str) -> dict[str, Any]:
    path = cache / "packages" / source / "icons.json"
    if not path.is_file():
        raise RealPicturesError(f"{path} is missing: run `{FETCH}`")
    parsed: dict[str, Any] = json.loads(path.read_text())
    return parsed


def source_svg(cache: Path, entry: Entry, icon_sets: dict[str, dict[str, Any]]) -> bytes:
    """The SVG document of an entry, from the fetched packages or openclipart's folder."""
    if entry.source == OPENCLIPART:
        path = OPENCLIPART_ROOT / entry.picture
        if not path.is_file():
            raise RealPicturesError(f"{path} is missing: apt-get install openclipart-svg")
        return path.read_bytes()
    if entry.source not in icon_sets:
        icon_sets[entry.source] = icon_set(cache, entry.source)
    return iconify_svg(icon_sets[entry.source], entry.picture).encode()


def fetch_packages(cache: Path, packages: dict[str, str] = NPM_SOURCES) -> None:
    """`npm pack` every pinned package (source name → package@version) into cache/packages and
    keep its icons.json and info."""
    for source, spec in packages.items():
        target = cache / "packages" / source
        if (target / "icons.json").is_file():
            continue
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "pack", spec, "--silent", "--pack-destination", str(target)],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise RealPicturesError(f"npm pack {spec} failed: {done.stderr.strip()[:300]}")
        tarball = target / done.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as archive:
            for member in ("icons.json", "info.json"):
                extracted = archive.extractfile(f"package/{member}")
                if extracted is None:
                    raise RealPicturesError(f"{tarball.name} has no {member}")
                (target / member).write_bytes(extracted.read())
        tarball.unlink()


def render_all(cache: Path, entries: list[Entry]) -> int:
    """Render every entry not yet rendered into cache/png; returns how many were rendered."""
    out = cache / "png"
    out.mkdir(parents=True, exist_ok=True)
    icon_sets: dict[str, dict[str, Any]] = {}
    rendered = 0
    for entry in entries:
        target = out / f"{entry.key}.png"
        if not target.is_file():
            partial = target.with_suffix(".tmp")
            partial.write_bytes(render_svg(source_svg(cache, entry, icon_sets)))
            partial.replace(target)
            rendered += 1
    return rendered


def load(cache: str | os.PathLike[str] | None = None, labels: Path = LABELS) -> list[Picture]:
    """Every labelled picture, rendered; RealPicturesError saying how to fetch when missing."""
    folder = cache_dir(cache) / "png"
    entries = read_labels(labels)
    missing = [e.key for e in entries if not (folder / f"{e.key}.png").is_file()]
    if missing:
        raise RealPicturesError(
            f"the real-picture set is not fetched ({len(missing)} of {len(entries)} pictures "
            f"missing in {folder}): run `{FETCH}`"
        )
    return [Picture(e, (folder / f"{e.key}.png").read_bytes()) for e in entries]


def summary(entries: list[Entry]) -> str:
    """Counts per source and per class, as two text lines."""
    sources = Counter(e.source for e in entries)
    classes = Counter(CLASS_NAMES[e.label] for e in entries)
    return (
        f"{len(entries)} pictures; by source: "
        + ", ".join(f"{s} {sources[s]}" for s in SOURCES)
        + "\nby class: "
        + ", ".join(f"{c} {classes[c]}" for c in CLASS_NAMES)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.real_pictures")
    parser.add_argument("command", choices=("fetch", "list"))
    parser.add_argument("--cache", help=f"default ${ENV_VAR}, else {DEFAULT_CACHE}")
    args = parser.parse_args(argv)
    entries = read_labels()
    if args.command == "fetch":
        cache = cache_dir(args.cache)
        try:
            fetch_packages(cache)
            rendered = render_all(cache, entries)
        except RealPicturesError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"rendered {rendered} new pictures into {cache / 'png'}")
    print(summary(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
