"""Batch for image models: several images or a zip (and, for a model that also takes other inputs, a CSV naming
the images in an image column); results with thumbnails, filters, the chart and the CSV download (`file` first).
The upload is kept for the Compare tab, which runs a second version on the same images."""

from __future__ import annotations

import hashlib
import time

import streamlit as st

from dashboard import service
from dashboard.common.logs import log, report
from dashboard.config import Settings
from dashboard.errors import DashboardError, InputError
from dashboard.history import Recorder
from dashboard.prediction.images import FILE_COLUMN, ImageFile, batch_rows, describe, kept_table
from dashboard.prediction.reading import image_files
from dashboard.prediction.reading.table import InputTable
from dashboard.prediction.results import results_csv
from dashboard.prediction.scoring import BatchResult
from dashboard.service import Served
from dashboard.ui import images, insight, session
from dashboard.ui.session import Upload
from dashboard.ui.words import md


def show(
    settings: Settings, served: Served, who: str, recorder: Recorder | None, report_rows, chart
) -> BatchResult | None:
    """Draw the Batch tab of an image model; returns the result (None without a usable upload)."""
    feature = served.schema.images[0]
    alone = len(served.schema.features) == 1
    uploads = st.file_uploader(
        "Upload images or a zip of images" + ("" if alone else ", with a CSV naming them in its image column"),
        type=[*images.UPLOAD_TYPES, "zip", *([] if alone else ["csv"])],
        accept_multiple_files=True,
        key="batch-images",
        max_upload_size=max(1, settings.csv_max_bytes // 1_000_000),
    )
    if not uploads:
        if session.upload() is not None:
            session.keep_upload(None)
            st.rerun(scope="app")
        st.info(
            f"The model takes {md(describe(feature))}: each file is one row, named in the results' "
            f"{FILE_COLUMN} column. PNG, JPEG, WebP, GIF (first frame) and BMP."
            + ("" if alone else f" Add a CSV with the columns {md(', '.join(served.schema.names))}.")
        )
        return None
    file_id = hashlib.sha256("\0".join(u.file_id for u in uploads).encode()).hexdigest()[:16]
    result = session.batch_result(file_id, served)
    if result is None:
        result = _predicted(settings, served, uploads, file_id, who, recorder)
        if result is None:
            return None
    report_rows(result)
    current = session.upload()
    files = list(current.table.frame[feature.name]) if current is not None else []
    images.results(served, result.table, files)
    chart(served, result)
    if current is not None:
        insight.drift(served, current.table, result)  # size, aspect, brightness, contrast against the training images
    table = result.table
    st.download_button(
        "Download results",
        lambda: results_csv(table),
        key="batch-download",
        type="primary",
        file_name=f"predictions-{served.label}.csv",
        mime="text/csv",
        help="Every image: its file name first, then the prediction and probabilities. Built when you click.",
    )
    return result


def _table(settings: Settings, served: Served, uploads) -> InputTable:
    """The uploads as rows: every image (zips unpacked) one row; with a CSV, its rows, image columns naming files."""
    files: list[ImageFile] = []
    tables = []
    for upload in uploads:
        name = upload.name
        if name.lower().endswith(".zip"):
            files.extend(image_files.zip_files(upload.getvalue()))
        elif name.lower().endswith(".csv"):
            tables.append(upload)
        else:
            files.append(ImageFile(name, upload.getvalue()))
    if len(tables) > 1:
        raise InputError("upload one CSV with the images (it names them in its image column)")
    if not tables:
        if len(served.schema.features) > 1:
            others = ", ".join(f.name for f in served.schema.features if f.type != "image")
            raise InputError(f"this model also takes {others}: add a CSV with those columns naming each image")
        if not files:
            raise InputError("the upload holds no files; upload images or a zip of images")
        return image_files.image_table(files, served.schema.images[0].name)
    by_name = {f.name: f for f in files} | {f.name.rsplit("/", 1)[-1]: f for f in files}
    table = service.read_csv(settings, tables[0].getvalue())
    frame = table.frame.copy()
    for feature in served.schema.images:
        if feature.name in frame.columns:
            frame[feature.name] = [by_name.get(str(cell).strip(), cell) for cell in frame[feature.name]]
    return InputTable(frame, table.row_errors, table.decimal_comma, table.separator, table.decimal)


def _within_budget(served: Served, table: InputTable) -> None:
    """A page batch is predicted at once: its images' model input must fit images.BATCH_BYTES (the CLI takes any
    number, a chunk at a time)."""
    most = batch_rows(served.schema.images)
    if table.rows > most:
        raise InputError(
            f"{table.rows:,} images are more than the page predicts at once ({most:,} at this model's size); "
            "predict them with the command line (python -m dashboard predict --input FOLDER), which takes any "
            "number a chunk at a time, or upload fewer"
        )


def _predicted(
    settings: Settings, served: Served, uploads, file_id: str, who: str, recorder: Recorder | None
) -> BatchResult | None:
    bar = st.progress(0.0, text="Reading the images…")
    started = time.perf_counter()
    try:
        table = _table(settings, served, uploads)
        _within_budget(served, table)
        result = service.predict_table(
            served, table, lambda done, total: bar.progress(done / total, text=f"Predicted {done:,} of {total:,}")
        )
    except DashboardError as exc:
        report(exc, "image batch refused")
        st.error(md(exc.message))
        return None
    finally:
        bar.empty()
    name = uploads[0].name if len(uploads) == 1 else f"{len(uploads)} files"
    current = Upload(file_id, name, table)
    session.keep_upload(current)
    new = current is not session.upload_seen()
    session.keep_batch_result(file_id, served, result)
    if recorder is not None:
        digest = hashlib.sha256(b"".join(u.getvalue() for u in uploads)).hexdigest()
        seconds = time.perf_counter() - started
        kept = kept_table(result.table, served.schema.images, result.frame, settings.history_images == "thumbnails")
        recorder.record(
            served, "batch", who, kept, seconds, keep_rows=settings.history_file_rows, file_name=name,
            file_sha256=digest,
        )  # fmt: skip
    log.info("image batch by %s: %d of %d with version %s", who, result.predicted, result.rows, served.label)
    if new:  # the Compare tab (a fragment) offers the new upload
        session.mark_upload_seen(current)
        st.rerun(scope="app")
    return result
