"""Images into the API (SPEC "Images"): `multipart/form-data` (field name = feature name; many files = many rows),
a raw `image/png|jpeg|webp` body for a model of one image input, and `{"b64": ...}` values in JSON rows. Every image
of a request counts against its limits: API_MAX_ROWS rows, and API_MAX_BYTES applied to the decoded pixels too
(a 50 KB PNG can unpack to gigabytes), read from the files' headers before any is decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from dashboard.api.errors import ApiError
from dashboard.prediction.images import ImageError, ImageFile, batch_rows, open_image
from dashboard.prediction.reading.json_rows import with_images
from dashboard.service import Served

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp")


def raw_image_rows(body: bytes, served: Served) -> list[dict[str, Any]]:
    """One row from a raw image body: only for a model whose one input is an image."""
    features = served.schema.features
    if len(features) != 1 or features[0].type != "image":
        raise ApiError(
            415,
            "unsupported_media_type",
            "a raw image body is for models of one image input; this model takes "
            f"{', '.join(f.name for f in features)}: send JSON or multipart/form-data",
        )
    return [{features[0].name: ImageFile("", body)}]


def form_rows(body: bytes, content_type: str, served: Served, max_rows: int) -> list[dict[str, Any]]:
    """Rows from a multipart form: each image feature's files in order, one row each; another field given once
    applies to every row, given as often as there are files it goes row by row."""
    fields = _fields(body, content_type)
    names = served.schema.names
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise ApiError(
            400, "bad_request", f"form field(s) {', '.join(unknown)} are not features; use {', '.join(names)}"
        )
    rows = max((len(values) for values in fields.values()), default=0)
    if rows == 0:
        raise ApiError(400, "bad_request", f"the form holds no fields; send one per feature ({', '.join(names)})")
    if rows > max_rows:
        raise ApiError(413, "too_many_rows", f"{rows:,} rows, over the {max_rows:,} limit (API_MAX_ROWS)")
    for name, values in fields.items():
        if len(values) not in (1, rows):
            raise ApiError(
                400,
                "bad_request",
                f"form field {name!r} is given {len(values)} times but the form has {rows} rows; give it once "
                "(for every row) or once per row",
            )
    return [{name: values[i if len(values) > 1 else 0] for name, values in fields.items()} for i in range(rows)]


def _fields(body: bytes, content_type: str) -> dict[str, list[Any]]:
    if "boundary=" not in content_type:
        raise ApiError(400, "bad_request", "the multipart/form-data body has no boundary; let the client build it")
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ApiError(400, "bad_request", "the multipart/form-data body cannot be read; let the client build it")
    fields: dict[str, list[Any]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "bad_request", "every form field needs a name (the feature it gives)")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        value: Any = ImageFile(filename or "", data) if filename is not None else data.decode("utf-8", "replace")
        fields.setdefault(name, []).append(value)
    return fields


def images_of(rows: list[Mapping[str, Any]], served: Served) -> list[Mapping[str, Any]]:
    """JSON rows with their {"b64": ...} values as files (a model with image features only)."""
    return with_images(rows, [f.name for f in served.schema.images]) if served.schema.images else rows


def check_pixels(rows: list[Mapping[str, Any]], served: Served, limit: int) -> None:
    """Refuse a request whose images would decode past API_MAX_BYTES (from their headers; an unreadable file is
    left for validation, as that row's error), or whose model input would pass images.BATCH_BYTES (thousands of
    tiny files, each stretched to the model's size)."""
    most = batch_rows(served.schema.images)
    if served.schema.images and len(rows) > most:
        raise ApiError(
            413,
            "too_many_rows",
            f"{len(rows):,} images are more than one request may hold at this model's size ({most:,}); "
            "send them in several requests",
        )
    total = 0
    for feature in served.schema.images:
        for row in rows:
            cell = row.get(feature.name)
            if isinstance(cell, ImageFile) and not cell.problem:
                try:
                    width, height = open_image(cell.data).size  # type: ignore[attr-defined]
                except ImageError:
                    continue
                total += width * height * feature.channels
    if total > limit:
        raise ApiError(
            413,
            "too_large",
            f"the images decode to {total:,} bytes of pixels, over the {limit:,} limit (API_MAX_BYTES); "
            "send fewer or smaller images per request",
        )
