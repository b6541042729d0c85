"""training.data: tiny generated IDX files, gzipped or raw, read back; every way they can be bad."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from training import data
from training.data import IMAGES_MAGIC, LABELS_MAGIC, DataError


def idx_bytes(magic: int, array: np.ndarray, dims: tuple[int, ...] | None = None) -> bytes:
    """An IDX file: magic, big-endian dimensions (the array's unless given), then the bytes."""
    dims = array.shape if dims is None else dims
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + array.astype(np.uint8).tobytes()


def write_split(
    folder: Path, prefix: str, count: int, gz: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Write `<prefix>-images-idx3-ubyte` and labels with count random items; return the arrays."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, count, dtype=np.uint8)
    for stem, blob in (
        (f"{prefix}-images-idx3-ubyte", idx_bytes(IMAGES_MAGIC, images)),
        (f"{prefix}-labels-idx1-ubyte", idx_bytes(LABELS_MAGIC, labels)),
    ):
        path = folder / (stem + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(blob) if gz else blob)
    return images, labels


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_load_reads_both_splits_as_uint8(tmp_path, gz):
    train_images, train_labels = write_split(tmp_path, "train", 6, gz, seed=1)
    test_images, test_labels = write_split(tmp_path, "t10k", 4, gz, seed=2)

    loaded = data.load(tmp_path)

    assert loaded.source == tmp_path
    assert loaded.train_images.dtype == loaded.train_labels.dtype == np.uint8
    assert loaded.train_images.shape == (6, 28, 28)
    np.testing.assert_array_equal(loaded.train_images, train_images)
    np.testing.assert_array_equal(loaded.train_labels, train_labels)
    np.testing.assert_array_equal(loaded.test_images, test_images)
    np.testing.assert_array_equal(loaded.test_labels, test_labels)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_file_hashes_are_of_the_files_as_stored(tmp_path, gz):
    write_split(tmp_path, "train", 6, gz, seed=1)
    write_split(tmp_path, "t10k", 4, gz, seed=2)

    loaded = data.load(tmp_path)

    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    assert loaded.files == expected
    assert len(expected) == 4


def test_array_hash_depends_on_contents_only():
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)

    assert data.sha256_of(array) == hashlib.sha256(array.tobytes()).hexdigest()
    assert data.sha256_of(array.T.copy().T) == data.sha256_of(array)
    assert data.sha256_of(array[:2]) != data.sha256_of(array)


def test_gzipped_file_is_preferred_when_both_exist(tmp_path):
    write_split(tmp_path, "train", 3, gz=True, seed=1)
    write_split(tmp_path, "t10k", 2, gz=True, seed=2)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"not read")

    assert data.load(tmp_path).train_images.shape == (3, 28, 28)


def corrupt(folder: Path, name: str, blob: bytes) -> Path:
    """Overwrite one file of a good dataset (gzipped if its name says so)."""
    path = folder / name
    path.write_bytes(gzip.compress(blob) if name.endswith(".gz") else blob)
    return path


@pytest.fixture
def raw_dir(tmp_path):
    """An uncompressed good dataset, for corrupting one file at a time."""
    write_split(tmp_path, "train", 6, gz=False, seed=1)
    write_split(tmp_path, "t10k", 4, gz=False, seed=2)
    return tmp_path


def good_images(count: int = 6) -> np.ndarray:
    return np.zeros((count, 28, 28), np.uint8)


@pytest.mark.parametrize(
    ("name", "blob", "message"),
    [
        (
            "train-images-idx3-ubyte",
            idx_bytes(LABELS_MAGIC, good_images()),
            "bad magic number 2049, expected 2051",
        ),
        (
            "train-labels-idx1-ubyte",
            idx_bytes(IMAGES_MAGIC, np.zeros(6, np.uint8)),
            "bad magic number 2051, expected 2049",
        ),
        (
            "train-images-idx3-ubyte",
            idx_bytes(IMAGES_MAGIC, good_images())[:-100],
            "truncated: 4620 bytes, expected 4720 for 6 items",
        ),
        ("train-images-idx3-ubyte", b"\x00\x00\x08", "shorter than the IDX header"),
        (
            "t10k-labels-idx1-ubyte",
            idx_bytes(LABELS_MAGIC, np.zeros(4, np.uint8)) + b"\x00\x00",
            "2 unexpected bytes after 4 items",
        ),
        (
            "train-images-idx3-ubyte",
            idx_bytes(IMAGES_MAGIC, np.zeros((6, 32, 32), np.uint8)),
            "images are 32x32, expected 28x28",
        ),
        (
            "t10k-images-idx3-ubyte",
            idx_bytes(IMAGES_MAGIC, good_images(5)),
            "holds 5 images but",
        ),
        (
            "train-labels-idx1-ubyte",
            idx_bytes(LABELS_MAGIC, np.array([0, 1, 2, 10, 3, 4])),
            "label 10 at index 3 is out of range 0..9",
        ),
    ],
    ids=[
        "images-magic",
        "labels-magic",
        "truncated",
        "header-only",
        "trailing-bytes",
        "wrong-dims",
        "count-mismatch",
        "label-range",
    ],
)
def test_bad_file_is_refused_naming_it(raw_dir, name, blob, message):
    path = corrupt(raw_dir, name, blob)

    with pytest.raises(DataError, match=message) as caught:
        data.load(raw_dir)

    assert str(path) in str(caught.value)


def test_truncated_gzip_is_refused_naming_it(tmp_path):
    write_split(tmp_path, "train", 6, gz=True, seed=1)
    write_split(tmp_path, "t10k", 4, gz=True, seed=2)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])

    with pytest.raises(DataError, match="truncated gzip stream") as caught:
        data.load(tmp_path)

    assert str(path) in str(caught.value)


def test_file_that_is_not_gzip_is_refused_naming_it(tmp_path):
    write_split(tmp_path, "train", 6, gz=True, seed=1)
    write_split(tmp_path, "t10k", 4, gz=True, seed=2)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"<html>not found</html>")

    with pytest.raises(DataError, match="not a valid gzip file") as caught:
        data.load(tmp_path)

    assert str(path) in str(caught.value)


def test_missing_file_is_named_with_what_was_expected(raw_dir):
    (raw_dir / "t10k-labels-idx1-ubyte").unlink()

    with pytest.raises(DataError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]") as caught:
        data.load(raw_dir)

    assert "train-images-idx3-ubyte[.gz]" in str(caught.value)  # the full expected list


def test_wrong_dir_lists_the_expected_files(tmp_path):
    wrong = tmp_path / "nowhere"

    with pytest.raises(DataError, match="is not a folder") as caught:
        data.load(wrong)

    message = str(caught.value)
    assert str(wrong) in message
    assert all(f"{stem}[.gz]" in message for stem in data.FILES.values())


def test_empty_dir_lists_all_four_files(tmp_path):
    with pytest.raises(DataError) as caught:
        data.load(tmp_path)

    assert all(f"{stem}[.gz]" in str(caught.value) for stem in data.FILES.values())


def test_data_dir_option_wins_over_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_VAR, "/from/env")

    assert data.find_data_dir(tmp_path) == tmp_path
    assert data.find_data_dir(None) == Path("/from/env")


def test_without_option_or_environment_the_debian_folder_or_download(monkeypatch, tmp_path):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "DEFAULT_DIR", tmp_path)
    assert data.find_data_dir(None) == tmp_path

    monkeypatch.setattr(data, "DEFAULT_DIR", tmp_path / "absent")
    assert data.find_data_dir(None) is None  # the caller downloads


def test_the_validation_split_is_seeded_and_disjoint():
    images = np.arange(100).reshape(100, 1, 1)
    labels = np.arange(100) % 10

    train_x, train_y, held_x, held_y = data.split_validation(images, labels, 20, seed=42)

    assert len(held_x) == 20
    assert sorted(np.concatenate([train_x, held_x]).ravel()) == list(range(100))
    assert np.array_equal(train_y, train_x.ravel() % 10)
    assert np.array_equal(held_y, held_x.ravel() % 10)
    assert np.array_equal(held_x, data.split_validation(images, labels, 20, seed=42)[2])
    assert not np.array_equal(held_x, data.split_validation(images, labels, 20, seed=1)[2])
