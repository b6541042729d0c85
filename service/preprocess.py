"""Image bytes → float32 [N,28,28] in 0..1: the one normalization shared by training and serving."""

import io
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from service.contract import IMAGE_SIDE
from service.deadline import NO_DEADLINE, Deadline
from service.errors import BadRequest, ImageTooLarge, InvalidImage, UnsupportedImageType
from service.photo import WORK_SIDE, trim_to_object

DEFAULT_MAX_PIXELS = 4096 * 4096
INVERT_CHOICES = ("auto", "true", "false")
# auto: a 28×28 picture is taken as a dataset image (passed through), anything else as a photo.
MODE_CHOICES = ("auto", "photo", "dataset")

# The allow-list: Image.open tries only these parsers, so SVG, PDF, EPS, PSD, ... bytes never
# reach a decoder. Importing the plugins registers them, so Pillow never imports its ~40 others
# (a first-request stall, and memory, in every worker). A JPEG with extra pictures, as many
# cameras write, opens through "JPEG" with format "MPO".
_FORMATS = tuple(
    plugin.format
    for plugin in (
        PngImagePlugin.PngImageFile,
        JpegImagePlugin.JpegImageFile,
        GifImagePlugin.GifImageFile,
        BmpImagePlugin.BmpImageFile,
        WebPImagePlugin.WebPImageFile,
        TiffImagePlugin.TiffImageFile,
    )
)
_SUPPORTED = "PNG, JPEG, GIF, BMP, WebP, TIFF"
# Leading bytes of those formats: they tell a damaged image (InvalidImage) from another file type.
_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
)
_MID_GREY = 127.5


def normalize(pixels: np.ndarray) -> np.ndarray:
    """Scale uint8 pixels 0..255 to float32 0..1, exactly as the network was trained."""
    return np.asarray(pixels, dtype=np.float32) / np.float32(255.0)


class Preprocessed(NamedTuple):
    """A decoded batch and how each image was read (a tuple: made per request, cheaply)."""

    images: np.ndarray  # float32 [N,28,28] in 0..1, C-contiguous: exactly what the model gets
    modes: tuple[str, ...]  # "photo" or "dataset", per image


class Reading(NamedTuple):
    """How to read images, validated: made by parse_reading, trusted by read_images."""

    invert: str = "auto"
    mode: str = "auto"


DEFAULT_READING = Reading()


def parse_reading(invert: str = "auto", mode: str = "auto") -> Reading:
    """The one check of the image options (any case); BadRequest naming the bad one."""
    return Reading(parse_invert(invert), parse_mode(mode))


def parse_invert(value: str) -> str:
    """Validate an invert option ('auto', 'true' or 'false', any case); BadRequest otherwise."""
    return parse_choice("invert", value, INVERT_CHOICES)


def parse_mode(value: str) -> str:
    """Validate a mode option ('auto', 'photo' or 'dataset', any case); BadRequest otherwise."""
    return parse_choice("mode", value, MODE_CHOICES)


def parse_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    """Validate one of a few named choices (any case); BadRequest naming the option otherwise."""
    choice = value.lower() if isinstance(value, str) else None
    if choice not in choices:
        raise BadRequest(f"{option} must be one of {', '.join(choices)} (got {str(value)[:40]!r})")
    return choice


def decode_image(
    data: bytes, invert: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS, mode: str = "auto"
) -> np.ndarray:
    """Decode one encoded image to float32 [28,28] in 0..1, a light object on a dark ground."""
    reading = parse_reading(invert, mode)
    pixels, _ = _decode_pixels(data, reading.invert, reading.mode, max_pixels)
    return normalize(pixels)


def preprocess_images(
    blobs: Sequence[bytes],
    invert: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    mode: str = "auto",
) -> np.ndarray:
    """Decode a batch of encoded images to one C-contiguous float32 [N,28,28] array in 0..1."""
    return preprocess(blobs, invert, max_pixels, mode).images


def preprocess(
    blobs: Sequence[bytes],
    invert: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    mode: str = "auto",
) -> Preprocessed:
    """Decode a batch, and say for each image whether it was read as a photo or a dataset image."""
    return read_images(blobs, parse_reading(invert, mode), max_pixels)


def read_images(
    blobs: Sequence[bytes],
    reading: Reading,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    deadline: Deadline = NO_DEADLINE,
) -> Preprocessed:
    """preprocess() with options already checked (the data plane's path).

    The deadline is checked before each image: one decode is bounded by max_pixels, a batch
    of them only by the request's budget.
    """
    invert, mode = reading
    pixels = np.empty((len(blobs), IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    modes = []
    for index, data in enumerate(blobs):
        deadline.check()
        try:
            pixels[index], used = _decode_pixels(data, invert, mode, max_pixels)
        except InvalidImage as exc:
            if len(blobs) == 1:
                raise
            # Same error class (same status), but the client learns which image of the batch failed.
            raise type(exc)(f"image {index + 1} of {len(blobs)}: {exc}") from exc
        modes.append(used)
    return Preprocessed(normalize(pixels), tuple(modes))


def _decode_pixels(data: bytes, invert: str, mode: str, max_pixels: int) -> tuple[np.ndarray, str]:
    """Decode one image to uint8 [28,28] (light on black) and the mode it was read in."""
    if not data:
        raise InvalidImage("empty image")
    image = _open(data, max_pixels)
    if mode == "photo" or (mode == "auto" and image.size != (IMAGE_SIDE, IMAGE_SIDE)):
        return _photo_pixels(_decode_upright(image, WORK_SIDE), invert), "photo"
    return _dataset_pixels(_decode_upright(image, IMAGE_SIDE), invert), "dataset"


def _photo_pixels(image: Image.Image, invert: str) -> np.ndarray:
    """The dataset's conversion of a photo: trim to the object, longest edge to 28, centre."""
    box = trim_to_object(_gray(image, 0 if invert == "false" else 255), _cut_out(image), invert)
    height, width = box.shape
    resized = Image.fromarray(box, "F").resize(_fit((width, height)), Image.Resampling.LANCZOS)
    # Lanczos rings beyond the input's range at sharp edges: cut that before stretching.
    pixels = np.clip(np.asarray(resized), 0, box.max())
    # Every one of the dataset's 70,000 images peaks at 254 or 255: its conversion stretched
    # each garment's contrast to full scale, whatever the garment's colour.
    pixels *= 255 / max(float(pixels.max()), 1e-6)
    return _pad_square(np.rint(pixels).astype(np.uint8), 0)


def _dataset_pixels(image: Image.Image, invert: str) -> np.ndarray:
    """A dataset-style picture as it is: resized whole to fit 28×28, padded, inverted if asked."""
    # Transparent pixels are the picture's ground, so they must end up black like Fashion-MNIST's.
    # Fashion-MNIST was made from product photos on white, negated; a cut-out (a dark or coloured
    # object on transparency) is such a photo without its white, so it goes back onto white and
    # is negated like the dataset (auto sees a white border and inverts). Only invert=false, where
    # the client says its picture is already light on dark, composites onto black.
    gray = _gray(image, 0 if invert == "false" else 255)
    if gray.size != (IMAGE_SIDE, IMAGE_SIDE):
        # reducing_gap: a box reduction first, then Lanczos: fast on camera-sized photos.
        gray = gray.resize(_fit(gray.size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    pixels = np.asarray(gray)
    ground = _border_mean(pixels)
    if pixels.shape != (IMAGE_SIDE, IMAGE_SIDE):
        pixels = _pad_square(pixels, round(float(np.median(np.concatenate(_edges(pixels))))))
    if invert == "true" or (invert == "auto" and ground > _MID_GREY):
        pixels = 255 - pixels
    return pixels


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open (parse headers only) an accepted image whose declared size is within max_pixels."""
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if is_webp:
        # libwebp allocates the whole canvas as soon as Pillow opens the file: check it first.
        _check_size(_webp_canvas(data), max_pixels)
    try:
        image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own limit (a warning, or an error beyond twice MAX_IMAGE_PIXELS) fired first.
        raise ImageTooLarge("image too large: its declared size exceeds the pixel limit") from exc
    except Exception as exc:  # Pillow's header parsers raise many types on malformed bytes
        if is_webp or data.startswith(_SIGNATURES):
            raise InvalidImage("damaged image: its header cannot be read") from exc
        raise UnsupportedImageType(f"not a supported image ({_SUPPORTED})") from exc
    _check_size(image.size, max_pixels)
    return image


def _check_size(size: tuple[int, int] | None, max_pixels: int) -> None:
    """Refuse a declared size over max_pixels (a decompression bomb) or without pixels."""
    if size is None:
        return
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels"
        )
    if not width or not height:
        raise InvalidImage(f"image of {width}x{height} pixels has no pixels")


def _webp_canvas(data: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP header declares (lossy, lossless or extended), if readable."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        return width, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _decode_upright(image: Image.Image, side: int) -> Image.Image:
    """Decode the first frame and apply its EXIF orientation; a JPEG at least side pixels long."""
    try:
        if image.format in ("JPEG", "MPO"):
            # libjpeg decodes luma only and at 1/2..1/8 scale when that still covers the target.
            image.draft("L", _fit(image.size, side))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as exc:  # OSError, SyntaxError, EOFError, struct.error, ... on damaged data
        raise InvalidImage(f"damaged or truncated {image.format} image") from exc
    return image


def _gray(image: Image.Image, background: int) -> Image.Image:
    """8-bit grayscale ("L") with any transparency composited onto the background level."""
    mode = image.mode
    if mode == "L" and "transparency" not in image.info:
        return image
    if mode == "I" or mode.startswith("I;16"):
        # 16-bit grayscale: scale 0..65535 to 0..255 with rounding (convert("L") clips at 255).
        wide = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        return Image.fromarray(((wide + 128) // 257).astype(np.uint8), "L")
    try:
        if image.has_transparency_data:
            with_alpha = image.convert("LA")
            canvas = Image.new("L", image.size, background)
            canvas.paste(with_alpha.getchannel("L"), mask=with_alpha.getchannel("A"))
            return canvas
        return image.convert("L")
    except ValueError as exc:  # a mode Pillow cannot turn into grayscale, e.g. LAB
        raise UnsupportedImageType(f"unsupported pixel mode {mode}") from exc


def _fit(size: tuple[int, int], side: int = IMAGE_SIDE) -> tuple[int, int]:
    """The size with the longest side `side` and the same aspect ratio (as Fashion-MNIST)."""
    width, height = size
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _edges(pixels: np.ndarray) -> tuple[np.ndarray, ...]:
    """The outermost rows and columns of a 2-D image."""
    return pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]


def _border_mean(pixels: np.ndarray) -> float:
    """Mean of the outermost pixels: the ground's level (at most ~108 in all of Fashion-MNIST)."""
    edges = _edges(pixels)
    # Summing bytes in Python: on 28-pixel edges numpy's per-call overhead is the larger cost.
    return sum(sum(edge.tobytes()) for edge in edges) / sum(edge.size for edge in edges)


def _cut_out(image: Image.Image) -> Image.Image | None:
    """The alpha mask of a cut-out (transparency all around the object), else None."""
    if not image.has_transparency_data or image.mode == "I" or image.mode.startswith("I;16"):
        return None  # 16-bit grey with a transparent level is no cut-out a camera makes
    with_alpha = image if "A" in image.getbands() else image.convert("RGBA")
    alpha = with_alpha.getchannel("A")
    border = np.concatenate(_edges(np.asarray(alpha)))
    return alpha if np.median(border) < 128 else None


def _pad_square(pixels: np.ndarray, ground: int) -> np.ndarray:
    """Centre a resized image on an IMAGE_SIDE square filled with the ground level."""
    height, width = pixels.shape
    square = np.full((IMAGE_SIDE, IMAGE_SIDE), ground, dtype=np.uint8)
    # An odd margin puts its extra pixel first, as in the dataset (a 21-wide item starts at 4).
    top, left = (IMAGE_SIDE + 1 - height) // 2, (IMAGE_SIDE + 1 - width) // 2
    square[top : top + height, left : left + width] = pixels
    return square
