"""The page's image parts (SPEC "Images"): a file or camera field, the image beside what mattered for its answer,
and the Batch tab's results for many images (thumbnails, filters by class and confidence)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.prediction import images
from dashboard.prediction.images import ImageFile
from dashboard.prediction.saliency import overlay
from dashboard.prediction.schema import Feature
from dashboard.service import Served
from dashboard.service.understand import SeenImage
from dashboard.ui.words import md

UPLOAD_TYPES = [suffix.lstrip(".") for suffix in images.SUFFIXES]
THUMBNAIL = 64  # pixels, the longer side, in the results table


def field(feature: Feature, camera: bool) -> ImageFile | None:
    """An image feature of the form: a file, or a photo from the camera when asked; None when none is given."""
    key = f"single-{feature.name}"
    hint = f"The model takes {images.describe(feature)}."
    if camera:
        shot = st.camera_input(md(feature.name), key=f"{key}-camera", help=hint)
        return ImageFile("camera.jpg", shot.getvalue()) if shot is not None else None
    upload = st.file_uploader(md(feature.name), type=UPLOAD_TYPES, key=key, help=hint)
    return ImageFile(upload.name, upload.getvalue()) if upload is not None else None


def seen(served: Served, shown: SeenImage, files: dict[str, ImageFile]) -> None:
    """The image as given beside the model's view with the squares that mattered tinted, and the cost."""
    feature = served.schema.images[0]
    given = files.get(feature.name)
    if given is None or shown.pixels is None or shown.saliency is None:
        return
    left, right = st.columns(2)
    left.image(given.data, caption=f"{given.name} as given", width="stretch")
    right.image(
        overlay(shown.pixels, shown.saliency, feature.scale),
        caption=f"What the model saw ({images.describe(feature)}); red: what mattered most",
        width="stretch",
    )
    st.caption(
        f"Why: each of {shown.saliency.copies - 1} squares was covered in turn with the image's mean colour; the "
        "redder, the more the answer's score fell without it. Cost: "
        f"{shown.saliency.copies} forward passes in one batched call, {shown.saliency.seconds * 1e3:.0f} ms."
    )


def thumbnail(item: object) -> str | None:
    """A small JPEG of an image file as a data URL (the results table's image column); None when unreadable."""
    if not isinstance(item, ImageFile) or item.problem:
        return None
    try:
        image = images.open_image(item.data)
        image.draft("RGB", (THUMBNAIL, THUMBNAIL))  # type: ignore[attr-defined]
        image = image.convert("RGB")  # type: ignore[attr-defined]
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
    except Exception:  # an unreadable file: its row says why; the table shows no picture
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def results(served: Served, table: pd.DataFrame, files: list[ImageFile]) -> pd.DataFrame:
    """The results of many images with a thumbnail column and filters by predicted class and confidence; the rows
    shown (the download keeps them all)."""
    shown = table.copy()
    shown.insert(0, "image", [thumbnail(f) for f in files])
    output = served.schema.output
    confidence = _confidence(shown, output)
    if output.type != "regression":
        labels = [label for label in output.labels if (shown["prediction"].astype(str) == label).any()]
        left, right = st.columns(2)
        chosen = left.multiselect("Predicted class", labels, default=labels, key="batch-image-classes")
        lowest = right.slider("Lowest confidence", 0.0, 1.0, 0.0, 0.05, key="batch-image-confidence", format="%.2f")
        keep = shown["prediction"].astype(str).isin(chosen).to_numpy() & (confidence.to_numpy() >= lowest)
        if not keep.all():
            st.caption(f"Showing {int(keep.sum()):,} of {len(shown):,} images.")
        shown = shown[keep]
    st.dataframe(
        shown,
        hide_index=True,
        key="batch-table",
        column_config={
            "image": st.column_config.ImageColumn("image", width="small"),
            **{c: st.column_config.NumberColumn(format="%.4f") for c in shown.columns if str(c).startswith("prob")},
        },
        column_order=["image", "file", *[c for c in shown.columns if c not in ("image", "file")]],
    )
    return shown


def _confidence(table: pd.DataFrame, output) -> pd.Series:
    """The probability of each row's predicted class (0 on rows with errors)."""
    if output.type == "classification":
        columns = [f"probability_{label}" for label in output.labels]
        values = table[columns].to_numpy(float)
        return pd.Series(np.nan_to_num(np.nanmax(np.where(np.isnan(values), -1, values), axis=1), nan=0.0).clip(0))
    if output.type == "binary":
        p = table["probability"].to_numpy(float)
        return pd.Series(np.nan_to_num(np.where(p >= output.threshold, p, 1 - p), nan=0.0))
    return pd.Series(np.ones(len(table)))
