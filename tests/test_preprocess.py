"""Preprocessing: real encoded images of every accepted format and mode, and all bad inputs."""

import gzip
import io
import os
import random
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from service.errors import (
    BadRequest,
    FashionServeError,
    ImageTooLarge,
    InvalidImage,
    NoObjectFound,
    UnsupportedImageType,
)
from service.preprocess import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SIDE,
    decode_image,
    normalize,
    parse_invert,
    parse_mode,
    preprocess,
    preprocess_images,
)

DATA_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
LOSSLESS = ("PNG", "GIF", "BMP", "TIFF")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """The bytes of image saved in fmt, as a client would upload them."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def figure(width: int = IMAGE_SIDE, height: int = IMAGE_SIDE) -> np.ndarray:
    """An asymmetric uint8 test picture: a white block in the upper left, a grey bar below."""
    pixels = np.zeros((height, width), dtype=np.uint8)
    pixels[height // 7 : height // 2, width // 7 : width // 2] = 255
    pixels[height - height // 4 : height - height // 7, width // 3 : width - width // 7] = 128
    return pixels


def png_declaring(width: int, height: int) -> bytes:
    """A few-hundred-byte PNG whose header declares width x height grey pixels (one row of data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" * (width + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def fashion_test_images() -> np.ndarray:
    """The real Fashion-MNIST test images, read straight from the IDX file."""
    with gzip.open(DATA_DIR / "t10k-images-idx3-ubyte.gz") as file:
        magic, count, rows, cols = struct.unpack(">IIII", file.read(16))
        assert (magic, rows, cols) == (2051, IMAGE_SIDE, IMAGE_SIDE)
        return np.frombuffer(file.read(), dtype=np.uint8).reshape(count, rows, cols)


# -- the Fashion-MNIST contract ------------------------------------------------------------------


def test_fashion_mnist_pngs_pass_through_exactly(fashion_test_images):
    count = len(fashion_test_images)
    rows = fashion_test_images[:, [0, -1]].reshape(count, -1)
    columns = fashion_test_images[:, 1:-1, [0, -1]].reshape(count, -1)
    border = np.concatenate((rows, columns), axis=1)
    lightest_ground = int(border.mean(axis=1).argmax())  # the hardest case for invert=auto
    originals = fashion_test_images[[0, 1, 2, 3, 4, 5, 6, 7, lightest_ground]]
    blobs = [encode(Image.fromarray(pixels), "PNG") for pixels in originals]

    for data, pixels in zip(blobs, originals, strict=True):
        assert np.array_equal(decode_image(data), normalize(pixels))
    batch = preprocess_images(blobs)
    assert batch.dtype == np.float32
    assert batch.flags.c_contiguous
    assert np.array_equal(batch, normalize(originals))


def test_invert_true_and_false_on_a_fashion_mnist_image(fashion_test_images):
    pixels = fashion_test_images[0]
    data = encode(Image.fromarray(pixels), "PNG")
    assert np.array_equal(decode_image(data, invert="false"), normalize(pixels))
    assert np.array_equal(decode_image(data, invert="TRUE"), normalize(255 - pixels))


def test_empty_batch_has_the_right_shape():
    batch = preprocess_images([])
    assert batch.shape == (0, IMAGE_SIDE, IMAGE_SIDE)
    assert batch.dtype == np.float32


# -- formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_the_picture(fmt):
    pixels = figure()
    result = decode_image(encode(Image.fromarray(pixels).convert("RGB"), fmt))
    assert result.shape == (IMAGE_SIDE, IMAGE_SIDE)
    assert result.dtype == np.float32
    if fmt in LOSSLESS:
        assert np.array_equal(result, normalize(pixels))
    else:  # JPEG and lossy WebP: close, not equal
        assert np.abs(result - normalize(pixels)).mean() < 0.03


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})],  # PNG with save_all: APNG
)
def test_animated_images_give_their_first_frame(fmt, options):
    first, second = figure(), 255 - figure()
    frames = [Image.fromarray(first).convert("RGB"), Image.fromarray(second).convert("RGB")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **options)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert np.array_equal(decode_image(data, invert="false"), normalize(first))


def test_exif_orientation_is_applied():
    # Stored landscape; EXIF orientation 6 says "display rotated 90° clockwise" (portrait).
    stored = Image.fromarray(figure(width=56, height=28))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated_jpeg = encode(stored, "JPEG", quality=95, exif=exif)
    upright_png = encode(stored.transpose(Image.Transpose.ROTATE_270), "PNG")

    result = decode_image(rotated_jpeg)
    expected = decode_image(upright_png)
    assert np.abs(result - expected).mean() < 0.03
    assert np.abs(decode_image(encode(stored, "JPEG", quality=95)) - expected).mean() > 0.1
    # Portrait: the padding went left and right, so the outer columns are ground.
    assert result[:, :5].max() < 0.1
    assert result[:, -5:].max() < 0.1


# -- pixel modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "dtype", "mode"),
    [("PNG", np.uint16, "I;16"), ("TIFF", np.uint16, "I;16"), ("TIFF", np.int32, "I")],
)
def test_16_bit_grayscale_is_scaled_not_clipped(fmt, dtype, mode):
    levels = np.array([0, 4, 128, 200, 255], dtype=np.uint16)
    wide = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=dtype)
    wide[5:10, 5:10] = (levels * 257)[None, :]  # exact 16-bit versions of the 8-bit levels
    wide[12, 12] = 1000  # 1000/65535 of white: 4/255, not saturated to 255
    data = encode(Image.fromarray(wide), fmt)
    assert Image.open(io.BytesIO(data)).mode == mode

    result = decode_image(data)
    assert np.array_equal(result[5, 5:10], normalize(levels.astype(np.uint8)))
    assert result[12, 12] == np.float32(4) / np.float32(255)


def test_palette_images_with_and_without_transparency():
    pixels = figure()
    palette_image = Image.fromarray(pixels).convert("P")
    assert np.array_equal(decode_image(encode(palette_image, "PNG")), normalize(pixels))
    assert np.array_equal(decode_image(encode(palette_image, "GIF")), normalize(pixels))

    # The black ground's palette entry marked transparent: the ground stays black whatever
    # invert says; auto treats the picture as a cut-out (a photo without its white) and negates
    # the opaque pixels, as Fashion-MNIST negated its photos.
    transparent = palette_image.copy()
    transparent.info["transparency"] = palette_image.getpixel((0, 0))
    data = encode(transparent, "PNG")
    assert Image.open(io.BytesIO(data)).has_transparency_data
    assert np.array_equal(decode_image(data, invert="false"), normalize(pixels))
    negated = np.where(pixels == 0, 0, 255 - pixels).astype(np.uint8)
    assert np.array_equal(decode_image(data), normalize(negated))


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk(fmt):
    pixels = figure()
    data = encode(Image.fromarray(pixels).convert("CMYK"), fmt)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert np.abs(decode_image(data) - normalize(pixels)).mean() < 0.03


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_opaque_alpha_images_are_their_pixels(mode):
    pixels = figure()
    image = Image.fromarray(pixels).convert(mode)
    assert np.array_equal(decode_image(encode(image, "PNG")), normalize(pixels))


def test_one_bit_images():
    pixels = np.where(figure() > 0, 255, 0).astype(np.uint8)
    data = encode(Image.fromarray(pixels).convert("1"), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "1"
    assert np.array_equal(decode_image(data), normalize(pixels))


def test_a_mode_without_grayscale_is_refused_clearly():
    with pytest.raises(UnsupportedImageType, match="pixel mode LAB"):
        decode_image(encode(Image.new("LAB", (8, 8)), "TIFF"))


# -- dataset mode on bigger pictures: resize whole, padding, inversion, transparency -------------


def product_photo(ground: tuple[int, ...], garment: tuple[int, ...], mode: str) -> Image.Image:
    """A 300x200 product shot: a dark-blue 'garment' filling the middle, on the given ground."""
    image = Image.new(mode, (300, 200), ground)
    image.paste(garment, (90, 30, 210, 170))
    return image


def test_dataset_mode_resizes_the_whole_picture_pads_and_inverts():
    photo = product_photo((255, 255, 255), (20, 30, 120), "RGB")
    result = decode_image(encode(photo, "JPEG", quality=95), mode="dataset")
    assert result.shape == (IMAGE_SIDE, IMAGE_SIDE)
    border = np.concatenate((result[0], result[-1], result[:, 0], result[:, -1]))
    assert border.max() < 0.05  # dark ground, padding included: like Fashion-MNIST
    assert result[14, 14] > 0.6  # the dark garment became light
    # Landscape: 300x200 → 28x19 centred, the garment spans the middle 11 columns.
    assert result[9:19, 9:19].min() > 0.6
    assert result[:, :7].max() < 0.05

    kept = decode_image(encode(photo, "PNG"), invert="false", mode="dataset")
    assert kept[0].min() > 0.95  # invert=false keeps the white ground (and pads with it)
    assert kept[14, 14] < 0.4


@pytest.mark.parametrize("mode", ["dataset", "photo"])
def test_transparent_cut_out_reads_like_the_same_photo_on_white(mode):
    cut_out = product_photo((0, 0, 0, 0), (20, 30, 120, 255), "RGBA")
    on_white = product_photo((255, 255, 255), (20, 30, 120), "RGB")
    result = decode_image(encode(cut_out, "PNG"), mode=mode)
    assert np.array_equal(result, decode_image(encode(on_white, "PNG"), mode=mode))
    assert result[:, 0].max() == 0.0  # the transparent ground became Fashion-MNIST's black
    assert result[14, 14] > 0.6

    # The same cut-out as a WebP and as a grey+alpha PNG.
    assert (
        np.abs(decode_image(encode(cut_out, "WEBP", lossless=True), mode=mode) - result).max()
        < 0.01
    )
    grey_alpha = encode(cut_out.convert("LA"), "PNG")
    assert np.abs(decode_image(grey_alpha, mode=mode) - result).max() < 0.01


def test_dataset_mode_keeps_a_cut_outs_levels_when_told_not_to_invert():
    # The client says "already light on dark": the transparent ground still ends up black.
    cut_out = product_photo((0, 0, 0, 0), (20, 30, 120, 255), "RGBA")
    as_is = decode_image(encode(cut_out, "PNG"), invert="false", mode="dataset")
    assert as_is[0].max() == 0.0
    assert 0.05 < as_is[14, 14] < 0.4  # the garment keeps its own (dark) level


def test_dataset_mode_scales_tiny_images_up_whole():
    pixels = np.zeros((7, 7), dtype=np.uint8)
    pixels[2:5, 2:5] = 255
    result = decode_image(encode(Image.fromarray(pixels), "PNG"), mode="dataset")
    assert result.shape == (IMAGE_SIDE, IMAGE_SIDE)
    assert result[14, 14] > 0.9
    assert result[0].max() < 0.05


# -- photo mode: the dataset's own conversion -----------------------------------------------------


def test_auto_reads_a_28x28_picture_as_a_dataset_image_and_anything_else_as_a_photo():
    small = encode(Image.fromarray(figure()), "PNG")
    photo = encode(product_photo((230, 230, 230), (20, 30, 120), "RGB"), "JPEG")
    assert preprocess([small, photo]).modes == ("dataset", "photo")
    assert preprocess([small, photo], mode="photo").modes == ("photo", "photo")
    assert preprocess([small, photo], mode="DATASET").modes == ("dataset", "dataset")


def test_a_photo_becomes_its_object_trimmed_resized_centred_and_negated():
    photo = product_photo((255, 255, 255), (20, 30, 120), "RGB")  # garment 120x140 at (90, 30)
    result = decode_image(encode(photo, "PNG"))
    # Trimmed to the garment, its longest edge to 28: 24x28, centred, ground black, the
    # garment at full scale as in every Fashion-MNIST image.
    assert np.array_equal(result[:, 2:26], np.ones((28, 24), dtype=np.float32))
    assert result[:, :2].max() == result[:, 26:].max() == 0.0


@pytest.mark.parametrize("ground", [(255, 255, 255), (150, 150, 150), (120, 160, 200)])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_photo_reads_the_same_on_any_ground_and_anywhere_on_it(ground, fmt, fashion_test_images):
    item = fashion_test_images[0]
    coverage = np.asarray(Image.fromarray(item).resize((168, 168), Image.Resampling.BICUBIC))
    for left, top in ((20, 30), (150, 12)):
        canvas = np.ones((240, 360, 3)) * ground
        alpha = np.zeros((240, 360, 1))
        alpha[top : top + 168, left : left + 168, 0] = coverage / 255
        pixels = canvas * (1 - alpha) + np.array([20, 30, 60]) * alpha
        data = encode(Image.fromarray(np.rint(pixels).astype(np.uint8)), fmt, quality=90)
        assert np.abs(decode_image(data) - normalize(item)).mean() < 0.05


def test_an_upscaled_dataset_image_is_recovered_in_photo_mode(fashion_test_images):
    item = fashion_test_images[0]
    big = Image.fromarray(item).resize((280, 280), Image.Resampling.BICUBIC)  # light on dark
    assert np.abs(decode_image(encode(big, "PNG")) - normalize(item)).mean() < 0.04


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_picture_of_nothing_is_refused_in_photo_mode_not_guessed(fmt):
    blank = Image.new("RGB", (300, 200), (200, 200, 200))
    with pytest.raises(NoObjectFound, match="no object found"):
        decode_image(encode(blank, fmt))
    with pytest.raises(NoObjectFound, match=r"^image 2 of 2: no object found"):
        preprocess_images([encode(Image.fromarray(figure()), "PNG"), encode(blank, fmt)])
    as_it_is = decode_image(encode(blank, fmt), mode="dataset")  # if the client insists
    assert as_it_is.min() == as_it_is.max()
    transparent = encode(Image.new("RGBA", (300, 200), (0, 0, 0, 0)), "PNG")
    with pytest.raises(NoObjectFound):
        decode_image(transparent)


def test_camera_sized_jpeg_is_read_at_a_reduced_scale(fashion_test_images):
    item = fashion_test_images[2]
    coverage = Image.fromarray(item).resize((2400, 2400), Image.Resampling.BICUBIC)
    photo = Image.new("L", (4000, 3000), 240)
    photo.paste(Image.new("L", coverage.size, 30), (900, 300), mask=coverage)
    result = decode_image(encode(photo, "JPEG", quality=90))
    assert np.abs(result - normalize(item)).mean() < 0.05


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), ("Photo", "photo")])
def test_parse_mode_accepts_any_case(value, expected):
    assert parse_mode(value) == expected


@pytest.mark.parametrize("value", ["", "raw", "photos", None])
def test_parse_mode_rejects_other_values(value):
    with pytest.raises(BadRequest, match="mode must be one of auto, photo, dataset"):
        parse_mode(value)


# -- bad input -----------------------------------------------------------------------------------


def test_empty_bytes():
    with pytest.raises(InvalidImage, match="empty image"):
        decode_image(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is a text file that somebody named shoe.png\n",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
        b'<rect width="28" height="28"/></svg>',
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        b"<!DOCTYPE html><html><body><img src=x></body></html>",
        bytes(random.Random(7).getrandbits(8) for _ in range(4096)),
    ],
    ids=["text", "svg", "pdf", "html", "random"],
)
def test_other_file_types_are_unsupported(data):
    with pytest.raises(UnsupportedImageType, match=r"not a supported image \(PNG, JPEG, GIF"):
        decode_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_images_are_invalid_not_half_decoded(fmt, keep):
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    photo = product_photo((255, 255, 255), (20, 30, 120), "RGB")
    photo.paste((200, 60, 60), (0, 0, 300, 200), mask=Image.effect_noise((300, 200), 90))
    data = encode(photo, fmt)
    with pytest.raises(InvalidImage, match="damaged or truncated") as raised:
        decode_image(data[: int(len(data) * keep)])
    assert not isinstance(raised.value, UnsupportedImageType)


def test_a_cut_header_is_a_damaged_image_not_another_type():
    with pytest.raises(InvalidImage, match="damaged image") as raised:
        decode_image(encode(Image.new("L", (28, 28)), "PNG")[:20])
    assert not isinstance(raised.value, UnsupportedImageType)


def test_decompression_bomb_is_refused_before_decoding():
    bomb = png_declaring(50_000, 50_000)
    assert len(bomb) < 1_000
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge):
        decode_image(bomb)
    assert time.perf_counter() - started < 2  # decoding it would take minutes and 2.5 GB


def test_declared_size_is_checked_against_max_pixels():
    # 5000x5000 is below Pillow's own limit: this is the service's limit speaking.
    with pytest.raises(ImageTooLarge, match="5000x5000 pixels exceeds the limit of 16777216"):
        decode_image(png_declaring(5000, 5000))
    assert DEFAULT_MAX_PIXELS == 4096 * 4096

    small = encode(Image.fromarray(figure(100, 100)), "PNG")
    with pytest.raises(ImageTooLarge):
        preprocess_images([small], max_pixels=9_999)
    assert preprocess_images([small], max_pixels=10_000).shape == (1, IMAGE_SIDE, IMAGE_SIDE)


def test_pillow_bomb_warning_as_error_still_means_too_large():
    # 10000x10000 is over Pillow's warning threshold; a deployment running with -W error
    # turns that warning into an exception, which must still read as "too large".
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageTooLarge):
            decode_image(png_declaring(10_000, 10_000))


def test_webp_canvas_is_checked_before_libwebp_allocates_it():
    # A bare extended-WebP header declaring a 10000x10000 canvas: refused as too large from
    # the header alone (libwebp would allocate the canvas when Pillow opens the file).
    canvas = (10_000 - 1).to_bytes(3, "little") * 2
    header = b"RIFF" + struct.pack("<I", 22) + b"WEBP" + b"VP8X" + struct.pack("<I", 10)
    with pytest.raises(ImageTooLarge, match="10000x10000"):
        decode_image(header + b"\x00" * 4 + canvas)


def test_only_the_accepted_parsers_are_ever_loaded():
    # In a fresh interpreter (this one has saved WebP and TIFF, which loads every plugin).
    script = (
        "import sys\n"
        "from service.errors import InvalidImage\n"
        "from service.preprocess import decode_image\n"
        "for data in (b'%PDF-1.4', b'<svg/>', b'II*\\x00junk', b'hello'):\n"
        "    try:\n"
        "        decode_image(data)\n"
        "    except InvalidImage:\n"
        "        pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.endswith('ImagePlugin'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    accepted = {"Bmp", "Gif", "Jpeg", "Png", "Tiff", "WebP", "Ppm"}  # Ppm: Pillow's preinit
    assert set(done.stdout.split()) == {f"PIL.{name}ImagePlugin" for name in accepted}


def test_a_batch_names_the_bad_image():
    good = encode(Image.fromarray(figure()), "PNG")
    with pytest.raises(UnsupportedImageType, match=r"^image 2 of 3: not a supported image \("):
        preprocess_images([good, b"just some text", good])
    with pytest.raises(InvalidImage, match=r"^empty image$"):
        preprocess_images([b""])


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on malformed TIFF tags
def test_any_bytes_give_an_image_or_a_service_error():
    """Random and mutated bytes of every format: a valid result or an InvalidImage, no crash."""
    rng = random.Random(20240601)
    photo = Image.fromarray(figure(40, 30)).convert("RGB")
    seeds = [encode(photo, fmt) for fmt in FORMATS]
    seeds += [encode(photo.convert("RGBA"), "PNG"), encode(photo.convert("P"), "GIF")]
    cases = [rng.randbytes(rng.randrange(1, 200)) for _ in range(100)]
    for seed in seeds:
        cases.append(seed[:16] + rng.randbytes(rng.randrange(0, 300)))  # right magic, junk after
        for _ in range(40):
            mutated = bytearray(seed)
            for _ in range(rng.randrange(1, 8)):
                mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
            cut = rng.choice([len(mutated), rng.randrange(1, len(mutated))])
            cases.append(bytes(mutated[:cut]))

    outcomes = {"image": 0, "error": 0}
    for data in cases:
        try:
            result = decode_image(data)
        except InvalidImage:
            outcomes["error"] += 1
        except FashionServeError as exc:  # any other domain error is as wrong as a crash here
            pytest.fail(f"{type(exc).__name__} for {data[:32]!r}")
        else:
            assert result.shape == (IMAGE_SIDE, IMAGE_SIDE)
            assert result.dtype == np.float32
            assert 0.0 <= result.min() <= result.max() <= 1.0
            outcomes["image"] += 1
    # The mutations exercised both paths.
    assert outcomes["image"]
    assert outcomes["error"]


# -- the invert option ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("auto", "auto"), ("True", "true"), ("FALSE", "false")]
)
def test_parse_invert_accepts_any_case(value, expected):
    assert parse_invert(value) == expected


@pytest.mark.parametrize("value", ["", "yes", "1", " auto", "none"])
def test_parse_invert_rejects_other_values(value):
    with pytest.raises(BadRequest, match="invert must be one of auto, true, false"):
        parse_invert(value)


def test_bad_invert_is_refused_before_decoding():
    with pytest.raises(BadRequest):
        decode_image(b"", invert="maybe")
    with pytest.raises(BadRequest):
        preprocess_images([b""], invert="maybe")
