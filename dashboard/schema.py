"""Schemas: parse SPEC's JSON, infer one from a model, check it against the model, validate tables.

Also reading uploaded CSV bytes into a table (encodings, separators, limits).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from dashboard.errors import InputError, SchemaError

if TYPE_CHECKING:  # plain values are passed in; no runtime import of the loader
    from dashboard.loader import LoadedModel

FEATURE_TYPES = ("number", "category", "text")
OUTPUT_TYPES = ("classification", "binary", "regression")
TEMPLATE_HINT = "download the template from the Batch tab"
MAX_SHOWN_WARNINGS = 20


@dataclass(frozen=True)
class Feature:
    """One input column: a number (with optional range, default, unit), a category, or free text."""

    name: str
    type: str = "number"
    min: float | None = None
    max: float | None = None
    default: Any = None
    unit: str = ""
    choices: tuple[Any, ...] = ()

    @property
    def initial(self) -> Any:
        """The value a form starts with: default, else middle of the range, else the first choice."""
        if self.default is not None:
            return self.default
        if self.type == "category":
            return self.choices[0] if self.choices else ""
        if self.type == "text":
            return ""
        if self.min is not None and self.max is not None:
            return (self.min + self.max) / 2
        return self.min if self.min is not None else (self.max if self.max is not None else 0.0)


@dataclass(frozen=True)
class Output:
    """What the model gives: classification (labels), binary (labels, threshold) or regression (name, unit)."""

    type: str
    labels: tuple[str, ...] = ()
    threshold: float = 0.5
    name: str = "prediction"
    unit: str = ""


@dataclass(frozen=True)
class Schema:
    """Features in model order and the output description."""

    features: tuple[Feature, ...]
    output: Output
    inferred: bool = False

    @property
    def names(self) -> list[str]:
        """Feature names in order."""
        return [f.name for f in self.features]

    def template_csv(self) -> bytes:
        """A CSV with the expected header and one example row of defaults."""
        row = {f.name: f.initial for f in self.features}
        return pd.DataFrame([row], columns=self.names).to_csv(index=False).encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        """The schema as SPEC's JSON object."""
        features = []
        for f in self.features:
            item: dict[str, Any] = {"name": f.name, "type": f.type}
            for key in ("min", "max", "default"):
                if getattr(f, key) is not None:
                    item[key] = getattr(f, key)
            if f.unit:
                item["unit"] = f.unit
            if f.choices:
                item["choices"] = list(f.choices)
            features.append(item)
        out: dict[str, Any] = {"type": self.output.type}
        if self.output.type in ("classification", "binary"):
            out["labels"] = list(self.output.labels)
        if self.output.type == "binary":
            out["threshold"] = self.output.threshold
        if self.output.type == "regression":
            out["name"] = self.output.name
            if self.output.unit:
                out["unit"] = self.output.unit
        return {"features": features, "output": out}


@dataclass(frozen=True)
class Validated:
    """A table checked against a schema: model inputs for the good rows, an error text per row."""

    inputs: Any  # 2-D float array, or dict name -> 1-D array (named inputs)
    good: np.ndarray  # bool per row
    errors: np.ndarray  # str per row, "" where good
    warnings: tuple[str, ...]
    warning_count: int
    extra_columns: tuple[str, ...]

    @property
    def rows(self) -> int:
        """Rows in the table."""
        return int(self.good.size)

    @property
    def ready(self) -> int:
        """Rows that will be predicted."""
        return int(self.good.sum())


def parse_schema(data: Any, where: str = "schema") -> Schema:
    """SPEC's schema JSON -> Schema, with one clear error for the first thing wrong."""
    if not isinstance(data, Mapping):
        raise SchemaError(f"{where} must be a JSON object with \"features\" and \"output\"")
    raw_features = data.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        raise SchemaError(f"{where}: \"features\" must be a non-empty list of {{\"name\": ..., \"type\": ...}}")
    features = []
    seen = set()
    for i, item in enumerate(raw_features):
        feature = _parse_feature(item, f"{where}, features[{i}]")
        if feature.name in seen:
            raise SchemaError(f"{where}: feature {feature.name!r} is listed twice")
        seen.add(feature.name)
        features.append(feature)
    return Schema(features=tuple(features), output=_parse_output(data.get("output"), f"{where}, output"))


def _parse_feature(item: Any, where: str) -> Feature:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"].strip():
        raise SchemaError(f"{where} needs a \"name\" (the CSV column name)")
    name = item["name"].strip()
    kind = item.get("type", "number")
    if kind not in FEATURE_TYPES:
        raise SchemaError(f"{where} ({name}): type {kind!r} is not one of {', '.join(FEATURE_TYPES)}")
    if kind == "category":
        choices = item.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SchemaError(f"{where} ({name}): a category needs a non-empty \"choices\" list")
        default = item.get("default")
        if default is not None and default not in choices:
            raise SchemaError(f"{where} ({name}): default {default!r} is not one of the choices")
        return Feature(name=name, type=kind, choices=tuple(choices), default=default, unit=str(item.get("unit", "")))
    if kind == "text":
        return Feature(name=name, type=kind, default=item.get("default"))
    low, high, default = (_optional_number(item.get(k), where, name, k) for k in ("min", "max", "default"))
    if low is not None and high is not None and low > high:
        raise SchemaError(f"{where} ({name}): min {low:g} is above max {high:g}")
    return Feature(name=name, type=kind, min=low, max=high, default=default, unit=str(item.get("unit", "")))


def _optional_number(value: Any, where: str, name: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SchemaError(f"{where} ({name}): \"{key}\" must be a finite number, not {value!r}")
    return float(value)


def _parse_output(item: Any, where: str) -> Output:
    if not isinstance(item, Mapping):
        raise SchemaError(f"{where} must be an object with \"type\": one of {', '.join(OUTPUT_TYPES)}")
    kind = item.get("type")
    if kind not in OUTPUT_TYPES:
        raise SchemaError(f"{where}: type {kind!r} is not one of {', '.join(OUTPUT_TYPES)}")
    labels = item.get("labels")
    if kind == "classification":
        if not isinstance(labels, list) or len(labels) < 2:
            raise SchemaError(f"{where}: a classification needs \"labels\", one per class (at least 2)")
    elif kind == "binary":
        labels = labels if labels is not None else ["0", "1"]
        if not isinstance(labels, list) or len(labels) != 2:
            raise SchemaError(f"{where}: a binary output needs exactly 2 \"labels\" (negative first)")
    else:
        labels = []
    labels = [str(label) for label in labels]
    if len(set(labels)) != len(labels):
        raise SchemaError(f"{where}: \"labels\" has duplicates")
    threshold = item.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise SchemaError(f"{where}: \"threshold\" must be a number between 0 and 1")
    return Output(type=kind, labels=tuple(labels), threshold=float(threshold),
                  name=str(item.get("name") or "prediction"), unit=str(item.get("unit") or ""))


def infer_schema(model: LoadedModel) -> Schema:
    """A schema from the model alone: x0..x{n-1} (or input names), output type from the last activation."""
    if model.named_inputs:
        features = tuple(Feature(name=i.name, type="text" if i.is_string else "number") for i in model.inputs)
    else:
        features = tuple(Feature(name=f"x{i}") for i in range(int(model.inputs[0].shape[0])))
    units, activation = model.output_units, model.output_activation
    if units == 1 and activation == "sigmoid":
        output = Output(type="binary", labels=("0", "1"))
    elif units > 1:
        output = Output(type="classification", labels=tuple(str(i) for i in range(units)))
    else:
        output = Output(type="regression")
    return Schema(features=features, output=output, inferred=True)


def check_against_model(schema: Schema, model: LoadedModel, where: str = "the schema") -> None:
    """Refuse a schema whose features or output disagree with what the model takes and gives."""
    if model.named_inputs:
        inputs = {i.name for i in model.inputs}
        names = set(schema.names)
        if inputs != names:
            missing, extra = sorted(inputs - names), sorted(names - inputs)
            raise SchemaError(f"{where} disagrees with the model: the model's inputs are {', '.join(sorted(inputs))}"
                              + (f"; missing from the schema: {', '.join(missing)}" if missing else "")
                              + (f"; not model inputs: {', '.join(extra)}" if extra else "")
                              + "; fix the schema's feature names")
    else:
        width = int(model.inputs[0].shape[0])
        if len(schema.features) != width:
            raise SchemaError(f"{where} lists {len(schema.features)} features but the model takes {width} per row; "
                              "list one feature per model input column, in order")
        text = [f.name for f in schema.features if f.type == "text"]
        if text:
            raise SchemaError(f"{where}: feature {text[0]!r} is text, but the model takes numbers only; "
                              "make it a number or a category")
    out, units = schema.output, model.output_units
    if out.type == "classification" and len(out.labels) != units:
        raise SchemaError(f"{where} lists {len(out.labels)} labels but the model gives {units} class scores; "
                          "list one label per class, in the model's order")
    if out.type in ("binary", "regression") and units != 1:
        raise SchemaError(f"{where} says the output is {out.type} but the model gives {units} values per row; "
                          "use \"classification\" with one label per class")


def read_csv(data: bytes, max_bytes: int, max_rows: int) -> pd.DataFrame:
    """Uploaded bytes -> table: UTF-8 (BOM or not) or Latin-1, separator , ; or tab; limits enforced."""
    if not data or not data.strip():
        raise InputError(f"the file is empty; upload a CSV with a header row and one row per prediction ({TEMPLATE_HINT})")
    if len(data) > max_bytes:
        raise InputError(f"the file is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
                         "split it into smaller files (or raise CSV_MAX_BYTES)")
    head = data[:8192]
    if b"\x00" in head or head.startswith((b"PK\x03\x04", b"\x89HDF", b"\x89PNG", b"%PDF", b"\x1f\x8b")):
        raise InputError("the file is not a text CSV (it looks binary); export your table as CSV "
                         f"(comma, semicolon or tab separated) and upload that ({TEMPLATE_HINT})")
    encoding = _encoding(data)
    first_line = data.split(b"\n", 1)[0]
    counts = {sep: first_line.count(sep.encode()) for sep in (",", ";", "\t")}
    sep = max(counts, key=lambda s: (counts[s], s == ","))
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep, encoding=encoding, nrows=max_rows + 1,
                            decimal="," if sep == ";" else ".", skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"the file has no header row; the first line must name the columns ({TEMPLATE_HINT})") from exc
    except pd.errors.ParserError:  # a line with more fields than the header: keep every row, flag those lines
        frame = _read_ragged(data, encoding, sep, max_rows)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the file cannot be read as CSV ({type(exc).__name__}); save it as UTF-8 CSV") from exc
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    if len(frame) == 0:
        raise InputError("the file has a header but no rows; add one row per prediction below the header")
    if len(frame) > max_rows:
        raise InputError(f"the file has more than {max_rows:,} rows, over the limit; "
                         "split it into smaller files (or raise CSV_MAX_ROWS)")
    return frame


RAGGED = "ragged_lines"  # frame.attrs key: {row index: message} for lines that had more fields than the header


def _read_ragged(data: bytes, encoding: str, sep: str, max_rows: int) -> pd.DataFrame:
    """The slow path for irregular files: every row kept (extra fields dropped), its row flagged in `error`."""
    text = data.decode(encoding)
    reader = csv.reader(io.StringIO(text), delimiter=sep, skipinitialspace=True)
    header = None
    rows: list[list[str]] = []
    ragged: dict[int, str] = {}
    for line in reader:
        if not line or all(not cell.strip() for cell in line):
            continue
        if header is None:
            header = line
            continue
        if len(rows) > max_rows:
            break
        if len(line) > len(header):
            ragged[len(rows)] = (f"line {reader.line_num} has {len(line)} fields but the header has {len(header)}; "
                                 "a stray separator, or a text value with a separator that needs quotes")
        rows.append((line + [""] * len(header))[: len(header)])
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame.attrs[RAGGED] = ragged
    return frame


def _encoding(data: bytes) -> str:
    try:
        data.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "latin-1"


def validate(frame: pd.DataFrame, schema: Schema, named_inputs: bool = False,
             string_inputs: frozenset[str] = frozenset()) -> Validated:
    """Check every row against the schema; a missing column refuses the table, bad cells flag their row only."""
    columns = [str(c) for c in frame.columns]
    missing = [name for name in schema.names if name not in columns]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        shown = ", ".join(repr(m) for m in missing)
        raise InputError(f"{noun} {shown} {'is' if len(missing) == 1 else 'are'} missing; expected columns: "
                         f"{', '.join(schema.names)}; {TEMPLATE_HINT}")
    rows = len(frame)
    problems: list[tuple[np.ndarray, np.ndarray | str]] = []  # (bad mask, one message or one per row)
    warn_masks: list[tuple[np.ndarray, str, str]] = []
    values: dict[str, np.ndarray] = {}
    for feature in schema.features:
        column = frame[feature.name]
        if feature.type == "number":
            numbers, bad, messages = _numbers(column, feature.name)
            problems.append((bad, messages))
            values[feature.name] = numbers
            finite = ~bad
            if feature.min is not None:
                low = finite & (numbers < feature.min)
                if low.any():
                    warn_masks.append((low, feature.name, f"below the usual minimum {feature.min:g}"))
            if feature.max is not None:
                high = finite & (numbers > feature.max)
                if high.any():
                    warn_masks.append((high, feature.name, f"above the usual maximum {feature.max:g}"))
        elif feature.type == "category":
            text = _texts(column)
            choices = [str(c) for c in feature.choices]
            codes = pd.Index(choices, dtype=object).get_indexer(text)
            bad = codes < 0
            messages = np.full(rows, "", dtype=object)
            for index in np.flatnonzero(bad):
                messages[index] = (f"{feature.name}: missing value" if text[index] == "" else
                                   f"{feature.name}: {text[index]!r} is not one of {', '.join(choices)}")
            problems.append((bad, messages))
            values[feature.name] = text if feature.name in string_inputs else codes.astype(np.float64)
        else:
            text = _texts(column)
            bad = text == ""
            problems.append((bad, f"{feature.name}: missing value"))
            values[feature.name] = text
    ragged = frame.attrs.get(RAGGED) or {}
    if ragged:
        bad = np.zeros(rows, dtype=bool)
        messages = np.full(rows, "", dtype=object)
        for index, message in ragged.items():
            bad[index], messages[index] = True, message
        problems.insert(0, (bad, messages))
    bad_any = np.zeros(rows, dtype=bool)
    for bad, _ in problems:
        bad_any |= bad
    errors = np.full(rows, "", dtype=object)
    if bad_any.any():
        for index in np.flatnonzero(bad_any):
            parts = []
            for bad, messages in problems:
                if bad[index]:
                    parts.append(messages if isinstance(messages, str) else messages[index])
            errors[index] = "; ".join(parts)
    good = ~bad_any
    warnings: list[str] = []
    warning_count = 0
    for mask, name, text in warn_masks:
        mask = mask & good
        count = int(mask.sum())
        warning_count += count
        for index in np.flatnonzero(mask)[:MAX_SHOWN_WARNINGS]:
            if len(warnings) < MAX_SHOWN_WARNINGS:
                warnings.append(f"row {index + 1}: {name} {values[name][index]:g} is {text}")
    if named_inputs:
        inputs = {name: array[good] for name, array in values.items()}
    else:
        inputs = np.column_stack([values[name][good] for name in schema.names]) if rows else np.empty((0, 0))
        inputs = inputs.astype(np.float32, copy=False)
    extra = tuple(c for c in columns if c not in set(schema.names))
    return Validated(inputs=inputs, good=good, errors=errors, warnings=tuple(warnings),
                     warning_count=warning_count, extra_columns=extra)


def _numbers(column: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | str]:
    """float64 values, a bad-row mask, and the message per bad row."""
    if pd.api.types.is_bool_dtype(column):
        column = column.astype("string")
    if pd.api.types.is_numeric_dtype(column):
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(numbers)
        messages = np.full(len(numbers), "", dtype=object)
        for index in np.flatnonzero(bad):
            value = numbers[index]
            messages[index] = (f"{name}: missing value" if np.isnan(value) else
                               f"{name}: {'inf' if value > 0 else '-inf'} is not a finite number")
        return numbers, bad, messages
    text = _texts(column)
    parsed = np.array(pd.to_numeric(pd.Series(text, dtype=object), errors="coerce"), dtype=np.float64)
    retry = np.isnan(parsed) & pd.Series(text, dtype=object).str.contains(",", regex=False).to_numpy(dtype=bool)
    if retry.any():  # decimal commas ("5,1") in a file whose separator is not a comma
        fixed = pd.Series(text[retry], dtype=object).str.replace(",", ".", regex=False)
        parsed[retry] = pd.to_numeric(fixed, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(parsed)
    messages = np.full(len(text), "", dtype=object)
    for index in np.flatnonzero(bad):
        raw = text[index]
        if raw == "" or raw.lower() in ("nan", "na", "n/a", "null", "none"):
            messages[index] = f"{name}: missing value"
        elif np.isinf(parsed[index]):
            messages[index] = f"{name}: {raw!r} is not a finite number"
        else:
            messages[index] = f"{name}: {raw!r} is not a number"
    return parsed, bad, messages


def _texts(column: pd.Series) -> np.ndarray:
    """Cells as stripped strings ('' for missing), as an object array."""
    series = column.astype("string").fillna("").str.strip()
    return series.to_numpy(dtype=object)


