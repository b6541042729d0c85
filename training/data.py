"""Read and verify the four original Fashion-MNIST IDX files; decide where they are found."""

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.contract import IMAGE_SIDE, NUM_CLASSES
from training import TrainingError

ENV_VAR = "FASHION_MNIST_DIR"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist package
IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, three dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, one dimension (count)
# The stem of each file; the reader accepts it gzipped (as published) or already decompressed.
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Where Keras' downloader fetches the same four files from (the last resort for online users).
DOWNLOAD_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


class DataError(TrainingError):
    """A data file or folder that is missing, truncated or not what Fashion-MNIST should be."""


@dataclass(frozen=True)
class Dataset:
    """The decoded, verified arrays and where they came from."""

    source: Path
    files: dict[str, str]  # file name -> sha256 of the file as stored
    train_images: np.ndarray  # uint8 [N, 28, 28]
    train_labels: np.ndarray  # uint8 [N]
    test_images: np.ndarray
    test_labels: np.ndarray


def sha256_of(data: bytes | np.ndarray) -> str:
    """Hex sha256 of raw bytes or of an array's C-ordered contents."""
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()


def find_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder to read: --data-dir, else $FASHION_MNIST_DIR, else Debian's; None: download."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    if DEFAULT_DIR.is_dir():
        return DEFAULT_DIR
    return None


def download() -> Path:
    """Fetch the four gzipped files with Keras' downloader (cached in ~/.keras); their folder."""
    from keras.utils import get_file  # imported here: TensorFlow is slow to import, rarely needed

    # The same cache folder keras.datasets.fashion_mnist.load_data() uses, so either fills it.
    cache = os.path.join("datasets", "fashion-mnist")
    paths = [
        get_file(f"{stem}.gz", origin=f"{DOWNLOAD_ORIGIN}{stem}.gz", cache_subdir=cache)
        for stem in FILES.values()
    ]
    return Path(paths[0]).parent


def locate(directory: Path) -> dict[str, Path]:
    """Each of the four files' path in directory (.gz preferred); DataError if one is missing."""
    expected = ", ".join(f"{stem}[.gz]" for stem in FILES.values())
    if not directory.is_dir():
        raise DataError(f"data dir {directory} is not a folder; expected it to hold {expected}")
    found, missing = {}, []
    for key, stem in FILES.items():
        candidates = [directory / f"{stem}.gz", directory / stem]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(f"{stem}[.gz]")
        else:
            found[key] = path
    if missing:
        raise DataError(
            f"data dir {directory} lacks {', '.join(missing)}; expected the four Fashion-MNIST IDX "
            f"files: {expected}"
        )
    return found


def _contents(path: Path) -> tuple[bytes, str]:
    """The decompressed bytes of path and the sha256 of the file as stored."""
    try:
        stored = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if path.suffix != ".gz":
        return stored, sha256_of(stored)
    try:
        return gzip.decompress(stored), sha256_of(stored)
    except EOFError as exc:
        raise DataError(f"{path}: truncated gzip stream") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc})") from exc


def read_idx(path: Path, magic: int) -> tuple[np.ndarray, str]:
    """Decode one IDX file, checking magic, dimensions and exact length: (uint8 array, sha256)."""
    data, digest = _contents(path)
    ndim = 3 if magic == IMAGES_MAGIC else 1
    header_size = 4 * (1 + ndim)
    if len(data) < header_size:
        raise DataError(f"{path}: truncated: {len(data)} bytes, shorter than the IDX header")
    found_magic = int.from_bytes(data[:4], "big")
    if found_magic != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{path}: bad magic number {found_magic}, expected {magic} (IDX {kind})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if ndim == 3 and shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(
            f"{path}: images are {shape[1]}x{shape[2]}, expected {IMAGE_SIDE}x{IMAGE_SIDE}"
        )
    expected = header_size + int(np.prod(shape))
    if len(data) < expected:
        raise DataError(
            f"{path}: truncated: {len(data)} bytes, expected {expected} for {shape[0]} items"
        )
    if len(data) > expected:
        raise DataError(
            f"{path}: {len(data) - expected} unexpected bytes after {shape[0]} items "
            f"(expected {expected} bytes)"
        )
    return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape), digest


def _split(paths: dict[str, Path], part: str) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Read one split's images and labels and check that they belong together."""
    images_path, labels_path = paths[f"{part}_images"], paths[f"{part}_labels"]
    images, images_sha = read_idx(images_path, IMAGES_MAGIC)
    labels, labels_sha = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(labels) and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DataError(
            f"{labels_path}: label {labels[bad]} at index {bad} is out of range "
            f"0..{NUM_CLASSES - 1}"
        )
    return images, labels, {images_path.name: images_sha, labels_path.name: labels_sha}


def load(directory: str | os.PathLike[str]) -> Dataset:
    """Read and verify the training and test splits from directory; DataError names the bad file."""
    directory = Path(directory)
    paths = locate(directory)
    train_images, train_labels, train_files = _split(paths, "train")
    test_images, test_labels, test_files = _split(paths, "test")
    return Dataset(
        source=directory,
        files=train_files | test_files,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
    )


def split_validation(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, validation images, validation labels): count random ones out."""
    if count >= len(images):
        raise TrainingError(f"--validation {count} leaves no training images out of {len(images)}")
    order = np.random.default_rng(seed).permutation(len(images))
    train, held = np.sort(order[count:]), np.sort(order[:count])
    return images[train], labels[train], images[held], labels[held]
