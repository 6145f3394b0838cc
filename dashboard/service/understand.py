"""The chain for understanding predictions, shared by the page, the API and the CLI: a table or a row ->
attributions against the reference input, what-if sweeps, drift against the published training statistics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dashboard.contract import ServableModel
from dashboard.errors import SchemaError
from dashboard.prediction import drift as reference
from dashboard.prediction import images, saliency, shapley
from dashboard.prediction.images import ImageFile
from dashboard.prediction.reading import csv_files
from dashboard.prediction.reading.table import InputTable
from dashboard.prediction.schema import Feature, Schema
from dashboard.prediction.scoring import BatchResult
from dashboard.prediction.validate import validate
from dashboard.service import Served, predict_table


@dataclass(frozen=True)
class Explained:
    """A prediction result with attributions for its good rows (the table gains attribution_<feature> columns)."""

    result: BatchResult
    attributions: shapley.Attributions | None  # None when no row could be predicted


def reference_frame(served: Served) -> pd.DataFrame:
    """The reference input: training medians (most frequent choices) when published, else the schema's defaults."""
    row = {}
    for feature in served.schema.features:
        value = reference.center(served.version.reference, feature.name)
        row[feature.name] = feature.initial if value is None else value
    return pd.DataFrame([row])


def _inputs(served: Served, table: InputTable, reference_row: bool = False):
    strings = frozenset(i.name for i in served.model.inputs if i.is_string)
    return validate(table, served.schema, served.model.named_inputs, strings, empty_text_ok=reference_row)


def explain_table(served: Served, table: InputTable, exact_limit: int = shapley.EXACT_LIMIT_BATCH) -> Explained:
    """Predict a table and explain its good rows; attribution_<feature> columns (empty on rows with errors)."""
    result = predict_table(served, table)
    validated = result.validated  # validated once, by predict_table
    base = _inputs(served, InputTable(reference_frame(served)), reference_row=True)
    if result.predicted == 0:
        return Explained(result, None)
    keep = result.good[validated.good]  # valid rows whose answer was finite: the ones predicted
    inputs = validated.inputs
    if not keep.all():
        inputs = {k: v[keep] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[keep]
    found = _in_chunks(served, inputs, base.inputs, exact_limit, result.predicted)
    for i, name in enumerate(served.schema.names):
        column = np.full(result.rows, np.nan)
        column[result.good] = found.values[:, i]
        result.table[f"attribution_{name}"] = column
    return Explained(result, found)


def _in_chunks(served: Served, inputs, base, exact_limit: int, rows: int, chunk: int = 2048):
    """Attributions computed 2,048 rows at a time: memory stays bounded (the coalition batches are rows x 2**n
    or rows x orderings x (n + 1) model inputs), which matters on a 512 MB dyno."""
    parts = []
    for start in range(0, rows, chunk):
        part = (
            {k: v[start : start + chunk] for k, v in inputs.items()}
            if isinstance(inputs, dict)
            else inputs[start : start + chunk]
        )
        parts.append(shapley.attribute(served.model, served.schema, part, base, exact_limit, seed=start))
    if len(parts) == 1:
        return parts[0]
    return shapley.Attributions(
        target=[t for p in parts for t in p.target],
        values=np.concatenate([p.values for p in parts]),
        errors=np.concatenate([p.errors for p in parts]),
        prediction=np.concatenate([p.prediction for p in parts]),
        reference=np.concatenate([p.reference for p in parts]),
        exact=parts[0].exact,
    )


def explain_row(served: Served, values: Mapping[str, Any]) -> Explained:
    """The form's row, explained exactly when it has at most 12 features."""
    frame = pd.DataFrame([{name: values.get(name) for name in served.schema.names}])
    return explain_table(served, InputTable(frame), shapley.EXACT_LIMIT_ROW)


def what_if(served: Served, values: Mapping[str, Any], feature: str) -> pd.DataFrame:
    """The output(s) as one feature sweeps its range (a number) or takes each choice (a category), others held."""
    spec = next(f for f in served.schema.features if f.name == feature)
    frame = pd.DataFrame([{name: values.get(name) for name in served.schema.names}])
    validated = _inputs(served, InputTable(frame))
    if validated.ready == 0:
        raise ValueError("the row has errors")
    if spec.type == "category":
        points = np.arange(len(spec.choices), dtype=float)
        shown = [str(c) for c in spec.choices]
    else:
        stats = (served.version.reference or {}).get("features", {}).get(feature)
        low, high = (stats["quantiles"]["0.01"], stats["quantiles"]["0.99"]) if stats else (None, None)
        points = shapley.sweep_points(served.schema, feature, low, high)
        shown = points
    outputs = shapley.sweep(served.model, served.schema, validated.inputs, feature, points)
    output = served.schema.output
    if output.type == "classification":
        columns = {f"probability of {label}": outputs[:, k] for k, label in enumerate(output.labels)}
    elif output.type == "binary":
        columns = {f"probability of {output.labels[1]}": outputs[:, 0]}
    else:
        columns = {output.name: outputs[:, 0]}
    return pd.DataFrame({feature: shown, **columns})


def drift(served: Served, table: InputTable, result: BatchResult) -> list[reference.FeatureDrift] | str:
    """Per-feature drift of a table's good rows, or why there is none (no reference, too few rows)."""
    why = _no_drift(served, result.predicted)
    if why:
        return why
    # the values as validated (decimal commas resolved), good rows only: as predict_table kept them
    validated = result.validated if result.validated is not None else _inputs(served, table)
    if served.schema.images:
        columns = _image_columns(served.schema, table, result, validated)
        return reference.drift(columns, np.ones(result.predicted, dtype=bool), served.version.reference)
    columns = _values(validated, served.schema)
    return reference.drift(columns, np.ones(validated.ready, dtype=bool), served.version.reference)


def _values(validated, schema: Schema) -> dict[str, np.ndarray]:
    """The good rows' values per feature: numbers as floats, categories as their choice text (not codes)."""
    columns = shapley.columns_of(validated.inputs, schema.names)
    for feature in schema.features:
        if feature.type == "category" and columns[feature.name].dtype != object:
            codes = columns[feature.name]
            columns[feature.name] = np.array([str(feature.choices[int(c)]) for c in codes], dtype=object)
    return columns


def _no_drift(served: Served, predicted: int) -> str | None:
    """Why a drift report cannot be made (no reference statistics, too few rows), or None."""
    if not served.version.reference:
        where = "train.csv" if not served.schema.images else "the folder of training images"
        return (
            f"version {served.label} has no reference statistics; publish it with --reference {where} "
            f"(or python -m dashboard convert --reference {where}) to compare uploads with the training data"
        )
    if predicted < reference.MIN_ROWS:
        return f"too few rows to compare with the training data ({predicted}; at least {reference.MIN_ROWS})"
    return None


def image_drift(served: Served, columns: Mapping[str, np.ndarray]) -> list[reference.FeatureDrift] | str:
    """Drift of predicted images given as their statistics (images.statistic_columns of the good rows): what the
    CLI collects chunk by chunk."""
    rows = len(next(iter(columns.values()))) if columns else 0
    why = _no_drift(served, rows)
    if why:
        return why
    return reference.drift(columns, np.ones(rows, dtype=bool), served.version.reference)


def _image_columns(schema: Schema, table: InputTable, result: BatchResult, validated) -> dict[str, np.ndarray]:
    """The predicted rows' values for drift: each image's statistics (size, aspect, brightness, contrast) from its
    file, the other inputs as validated."""
    columns: dict[str, np.ndarray] = {}
    for feature in schema.images:
        files = [f for f, good in zip(table.frame[feature.name], result.good, strict=True) if good]
        columns |= images.statistic_columns(files, feature.name)
    others = [f for f in schema.features if f.type != "image"]
    if others and isinstance(validated.inputs, dict):
        keep = result.good[validated.good]  # valid rows whose answer was finite
        for feature in others:
            values = np.asarray(validated.inputs[feature.name]).reshape(len(keep), -1)[:, 0][keep]
            if feature.type == "category" and values.dtype != object:
                values = np.array([str(feature.choices[int(c)]) for c in values], dtype=object)
            columns[feature.name] = values
    return columns


def image_reference_stats(schema: Schema, files: Iterable[ImageFile], where: str) -> dict[str, Any]:
    """Reference statistics of a folder (or zip) of training images, for a model of one image input."""
    if len(schema.features) != 1:
        raise SchemaError(
            f"{where}: a folder of images is a reference for models of one image input; this one also takes "
            f"{', '.join(f.name for f in schema.features if f.type != 'image')}"
        )
    feature = schema.images[0]
    columns = images.statistic_columns(list(files), feature.name)
    readable = ~np.isnan(next(iter(columns.values())))
    if not readable.any():
        raise SchemaError(f"{where}: no file in it is a readable image; give the folder of training images")
    numbers = Schema(
        features=tuple(Feature(name=name) for name in columns), output=schema.output, inferred=schema.inferred
    )
    stats = reference.compute({name: values[readable] for name, values in columns.items()}, numbers)
    reference.check(stats, schema, where)
    return stats


def reference_stats(schema: Schema, model: ServableModel, data: bytes, where: str) -> dict[str, Any]:
    """Reference statistics of a training CSV, validated against the schema (columns must be the schema's)."""
    table = csv_files.read_csv(data, max_bytes=1 << 31, max_rows=50_000_000, max_columns=10_000)
    missing = [name for name in schema.names if name not in table.frame.columns]
    if missing:
        raise SchemaError(
            f"{where}: the reference lacks the schema's features {', '.join(missing)}; "
            "give the training data with one column per feature"
        )
    strings = frozenset(i.name for i in model.inputs if i.is_string)
    validated = validate(table, schema, model.named_inputs, strings)
    if validated.ready == 0:
        raise SchemaError(f"{where}: no row of the reference is valid; check it against the template")
    columns = shapley.columns_of(validated.inputs, schema.names)
    for feature in schema.features:
        if feature.type == "category" and columns[feature.name].dtype != object:
            columns[feature.name] = np.array(
                [str(feature.choices[int(c)]) for c in columns[feature.name]], dtype=object
            )
    stats = reference.compute(columns, schema)
    reference.check(stats, schema, where)
    return stats


@dataclass(frozen=True)
class SeenImage:
    """One image row predicted, with what the model saw (pixels as preprocessed) and, when predicted, which
    squares of the first image input mattered (occlusion saliency)."""

    result: BatchResult
    pixels: np.ndarray | None  # (H, W, C) as the model took them; None when the row failed
    saliency: saliency.Saliency | None


def see_image(served: Served, row: Mapping[str, Any]) -> SeenImage:
    """Predict one row of an image model (files as ImageFile) and explain its first image by occlusion."""
    from dashboard.prediction.reading.json_rows import frame_of

    result = predict_table(served, InputTable(frame_of([row], served.schema.names)))
    validated = result.validated
    if not result.predicted or validated is None:
        return SeenImage(result, None, None)
    feature = served.schema.images[0].name
    inputs = validated.inputs
    pixels = np.asarray(inputs[feature] if isinstance(inputs, dict) else inputs)[0]
    output = int(np.argmax(result.values[0])) if served.schema.output.type == "classification" else 0
    return SeenImage(result, pixels, saliency.occlusion(served.model, inputs, feature, output))
