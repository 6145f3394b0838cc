"""Images as model inputs (SPEC "Images"): a file's bytes -> the pixels a schema's image feature asks for.

Pillow decodes: PNG, JPEG, WebP, GIF (first frame), BMP; EXIF orientation applied; alpha dropped; grayscale <-> RGB
converted. The preprocessing (size, channels, scale, resize) is the schema's, never a guess: `describe` words it
for the model card. A file over `max_pixels` (IMAGE_MAX_PIXELS) is refused from its header, before any decoding.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd

from dashboard.contract import IMAGE_RESIZES, IMAGE_SCALES

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
SCALES, RESIZES = IMAGE_SCALES, IMAGE_RESIZES


class Feature(Protocol):
    """What decoding needs of a schema's image feature (schema.Feature is one)."""

    name: str
    height: int
    width: int
    channels: int
    scale: str
    resize: str


DEFAULT_MAX_PIXELS = 40_000_000
FILE_COLUMN = "file"  # results of image files carry the file's name first
_limit = {"pixels": DEFAULT_MAX_PIXELS}


def set_max_pixels(pixels: int) -> None:
    """IMAGE_MAX_PIXELS for this process (applied when settings are read)."""
    _limit["pixels"] = int(pixels)


def max_pixels() -> int:
    """The largest image (width x height) decoded."""
    return _limit["pixels"]


BATCH_BYTES = 256 << 20  # the model input of one batch of images (float32 pixels at the model's size), at most


def input_bytes(feature: Feature) -> int:
    """Bytes of one image as the model takes it (float32 height x width x channels)."""
    return feature.height * feature.width * feature.channels * 4


def batch_rows(features: list) -> int:
    """How many rows of these image features fit one batch's budget, BATCH_BYTES (at least one)."""
    return max(1, BATCH_BYTES // max(1, sum(input_bytes(f) for f in features)))


@dataclass(frozen=True, eq=False)
class ImageFile:
    """An image as it came in: its name (inside the folder or zip; "" for an API value) and its bytes. Shown as its
    name wherever a table is printed or downloaded: pixels never go into a results file."""

    name: str
    data: bytes
    problem: str = ""  # why the file could not even be read (too large, damaged zip member): the row's error

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"ImageFile({self.name!r}, {len(self.data):,} bytes)"

    @property
    def size(self) -> int:
        """Bytes."""
        return len(self.data)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the bytes (history records it instead of the pixels)."""
        return hashlib.sha256(self.data).hexdigest()


class ImageError(ValueError):
    """This file cannot be a model input: why, in words for the row's error."""


def from_b64(value: object) -> ImageFile:
    """An API value {"b64": "<base64>"} (TF Serving's convention) -> the file; bad base64 is the row's error."""
    import base64
    import binascii

    text = value.get("b64") if isinstance(value, dict) else None
    if not isinstance(text, str):
        return ImageFile("", b"", problem='"b64" must be the image file as base64 text')
    try:
        return ImageFile("", base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return ImageFile("", b"", problem='"b64" is not valid base64; encode the file\'s bytes as standard base64')


def is_b64(value: object) -> bool:
    """True for an API value of the form {"b64": ...}."""
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def describe(feature: Feature) -> str:
    """The schema's preprocessing in words, for the model card: '64×64 RGB, pixels 0–255, stretched'."""
    colour = "RGB" if feature.channels == 3 else "grayscale"
    scale = {"0..255": "pixels 0–255", "0..1": "pixels scaled to 0–1", "-1..1": "pixels scaled to −1–1"}
    resize = {"stretch": "stretched", "crop": "centre-cropped", "pad": "padded"}
    return f"{feature.width}×{feature.height} {colour}, {scale[feature.scale]}, {resize[feature.resize]}"


def open_image(data: bytes) -> object:
    """A Pillow image, header read only (no pixels decoded yet): refused when it is not an image of a known
    format or larger than max_pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:  # past Pillow's own limit (twice its MAX_IMAGE_PIXELS), from the header
        raise ImageError(
            f"the image is over the {max_pixels():,}-pixel limit (IMAGE_MAX_PIXELS); send a smaller image"
        ) from None
    except UnidentifiedImageError:
        raise ImageError("not an image Pillow can read (PNG, JPEG, WebP, GIF or BMP)") from None
    except Exception as exc:  # a broken header: Pillow raises many types
        raise ImageError(f"the image is damaged or cut short ({type(exc).__name__}); send the file again") from None
    width, height = image.size
    if width * height > max_pixels():
        raise ImageError(
            f"{width:,}×{height:,} pixels is over the {max_pixels():,} limit (IMAGE_MAX_PIXELS); send a smaller image"
        )
    if width < 1 or height < 1:
        raise ImageError("the image has no pixels")
    return image


def pixels(data: bytes, feature: Feature) -> np.ndarray:
    """The model input for one file: float32 (height, width, channels), preprocessed as the schema says."""
    from PIL import Image, ImageOps

    image = open_image(data)
    size = (feature.width, feature.height)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if image.format == "JPEG":  # decode at the smallest DCT scale still >= the model's size (fast)
                image.draft("RGB" if feature.channels == 3 else "L", size)
            image.seek(0)  # GIF, WebP: the first frame
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB" if feature.channels == 3 else "L")  # alpha dropped, palette expanded
            if feature.resize == "crop":
                image = ImageOps.fit(image, size, Image.Resampling.BILINEAR)
            elif feature.resize == "pad":
                image = ImageOps.pad(image, size, Image.Resampling.BILINEAR, color=0)
            elif image.size != size:
                image = image.resize(size, Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
    except ImageError:
        raise
    except Exception as exc:  # truncated or corrupt pixel data
        why = type(exc).__name__
        raise ImageError(f"the image data is damaged or cut short ({why}); send the file again") from None
    if array.ndim == 2:
        array = array[:, :, None]
    if feature.scale == "0..1":
        array = array / 255.0
    elif feature.scale == "-1..1":
        array = array / 127.5 - 1.0
    return array


def image_cells(column: object, feature: Feature) -> tuple[list[np.ndarray | None], np.ndarray, np.ndarray]:
    """(pixels or None per row, bad mask, message per row) of an image column: each cell an ImageFile, else the
    row's error says what was there instead."""
    cells = list(column)  # type: ignore[call-overload]
    rows = len(cells)
    out: list[np.ndarray | None] = [None] * rows
    bad = np.zeros(rows, dtype=bool)
    messages = np.full(rows, "", dtype=object)
    for index, cell in enumerate(cells):
        if isinstance(cell, ImageFile) and cell.problem:
            why = f"{cell.name}: {cell.problem}" if cell.name else cell.problem
        elif isinstance(cell, ImageFile):
            try:
                out[index] = pixels(cell.data, feature)
                continue
            except ImageError as exc:
                why = f"{cell.name}: {exc}" if cell.name else str(exc)
        elif cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell == "":
            why = "missing image"
        elif isinstance(cell, str):
            why = f"{cell[:80]!r} is not an image file found beside the table"
        else:
            why = f"expected an image, not {type(cell).__name__}"
        bad[index] = True
        messages[index] = f"{feature.name}: {why}"
    return out, bad, messages


def stacked(cells: list[np.ndarray | None], good: np.ndarray, feature: Feature) -> np.ndarray:
    """The good rows' pixels as one float32 array (rows, height, width, channels)."""
    kept = [cells[i] for i in np.flatnonzero(good)]
    if not kept:
        return np.empty((0, feature.height, feature.width, feature.channels), dtype=np.float32)
    return np.stack(kept).astype(np.float32, copy=False)


STATISTICS = ("width", "height", "aspect", "brightness", "contrast")  # what drift compares for an image feature


def statistic_names(feature: str) -> list[str]:
    """The drift report's names of an image feature's statistics: photo.width, photo.brightness, ..."""
    return [f"{feature}.{name}" for name in STATISTICS]


def statistics(item: ImageFile) -> tuple[float, float, float, float, float] | None:
    """(width, height, aspect = width / height, brightness = mean luminance 0-255, contrast = its standard
    deviation) of a file as given (before the schema's resize); None when it cannot be read. Read from a small
    decoded copy (JPEG's draft mode), so a folder's statistics cost little more than its headers."""
    try:
        image = open_image(item.data)
        width, height = image.size  # type: ignore[attr-defined]
        image.draft("L", (64, 64))  # type: ignore[attr-defined]
        small = image.convert("L")  # type: ignore[attr-defined]
        small.thumbnail((64, 64))
        luminance = np.asarray(small, dtype=np.float64)
    except Exception:  # unreadable: not counted (its row is an error anyway)
        return None
    return float(width), float(height), width / height, float(luminance.mean()), float(luminance.std())


def statistic_columns(files: list[object], feature: str) -> dict[str, np.ndarray]:
    """Each statistic of the readable files, as columns named by statistic_names (NaN where unreadable)."""
    found = [statistics(f) if isinstance(f, ImageFile) else None for f in files]
    rows = np.array([f if f is not None else (np.nan,) * len(STATISTICS) for f in found], dtype=np.float64)
    rows = rows.reshape(len(found), len(STATISTICS))
    return {name: rows[:, k] for k, name in enumerate(statistic_names(feature))}


THUMBNAIL_SIDE = 128  # HISTORY_IMAGES=thumbnails: the longer side kept (the model's own size when larger, to 512)


def kept(item: object, thumbnails: bool = False, side: int = THUMBNAIL_SIDE) -> object:
    """An input as the history keeps it: an image as its file's name, size and digest (and, with thumbnails, a
    small PNG as a data URL: the Feedback tab's training-data export is built from it), never its full pixels;
    anything else as it is."""
    if not isinstance(item, ImageFile):
        return item
    record: dict[str, object] = {"file": item.name, "bytes": item.size, "sha256": item.digest}
    if thumbnails and not item.problem:
        import base64

        try:
            image = open_image(item.data)
            image.seek(0)  # type: ignore[attr-defined]
            from PIL import ImageOps

            small = ImageOps.exif_transpose(image).convert("RGB")  # type: ignore[arg-type]
            small.thumbnail((side, side))
            buffer = io.BytesIO()
            small.save(buffer, "PNG")
            record["thumbnail"] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        except Exception:  # an unreadable file keeps its name and digest only (its row is an error anyway)
            pass
    return record


def kept_table(table: pd.DataFrame, features: list[Feature], files: pd.DataFrame, thumbnails: bool) -> pd.DataFrame:
    """A results table with each image feature's column holding kept() records instead of names: what the page
    and the CLI record in the history. `files` is the frame the images came in (same rows)."""
    recorded = table.copy()
    side = max([THUMBNAIL_SIDE, *[min(512, max(f.height, f.width)) for f in features]])
    for feature in features:
        records = [kept(item, thumbnails, side) for item in files[feature.name]]
        recorded[feature.name] = pd.Series(records, dtype=object, index=recorded.index)
    return recorded
