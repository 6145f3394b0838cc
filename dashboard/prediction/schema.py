"""Schemas: parse SPEC's JSON, infer one from a model, check it against the model.

Reading inputs is reading/'s job, checking a table's rows against a schema is validate.py's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard.common import jsontext
from dashboard.contract import (
    FEATURE_TYPES,
    IMAGE_RESIZES,
    IMAGE_SCALES,
    OUTPUT_TYPES,
    FeatureType,
    InputInfo,
    OutputType,
    ServableModel,
)
from dashboard.errors import SchemaError


@dataclass(frozen=True)
class Feature:
    """One input column: a number (with optional range, default, unit), a category, or free text."""

    name: str
    type: FeatureType = "number"
    min: float | None = None
    max: float | None = None
    default: Any = None
    unit: str = ""
    choices: tuple[Any, ...] = ()
    # image features (SPEC "Images"): the model's pixel grid and how a file becomes it
    height: int = 0
    width: int = 0
    channels: int = 3
    scale: str = "0..255"
    resize: str = "stretch"

    @property
    def initial(self) -> Any:
        """The value a form starts with: default, else middle of the range, else the first choice."""
        if self.default is not None:
            return self.default
        if self.type == "category":
            return self.choices[0] if self.choices else ""
        if self.type == "text":
            return ""
        if self.type == "image":
            return None
        if self.min is not None and self.max is not None:
            return (self.min + self.max) / 2
        return self.min if self.min is not None else (self.max if self.max is not None else 0.0)


@dataclass(frozen=True)
class Output:
    """What the model gives: classification (labels), binary (labels, threshold) or regression (name, unit)."""

    type: OutputType
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

    @property
    def images(self) -> list[Feature]:
        """The image features, in order (none for a tabular model)."""
        return [f for f in self.features if f.type == "image"]

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
            if f.type == "image":
                item |= {"height": f.height, "width": f.width, "channels": f.channels}
                item |= {"scale": f.scale, "resize": f.resize}
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


LARGEST = 1e15  # the largest range bound or default a form can show exactly


def parse_schema(data: Any, where: str = "schema") -> Schema:
    """SPEC's schema JSON -> Schema, with one clear error for the first thing wrong."""
    if not isinstance(data, Mapping):
        raise SchemaError(f'{where} must be a JSON object with "features" and "output"')
    raw_features = data.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        raise SchemaError(f'{where}: "features" must be a non-empty list of {{"name": ..., "type": ...}}')
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
        raise SchemaError(f'{where} needs a "name" (the CSV column name)')
    name = item["name"].strip()
    kind = item.get("type", "number")
    if kind not in FEATURE_TYPES:
        raise SchemaError(f"{where} ({name}): type {kind!r} is not one of {', '.join(FEATURE_TYPES)}")
    if kind == "category":
        choices = item.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SchemaError(f'{where} ({name}): a category needs a non-empty "choices" list')
        seen: set[str] = set()
        for choice in choices:
            if (
                isinstance(choice, bool)
                or not isinstance(choice, (str, int, float))
                or (isinstance(choice, float) and not math.isfinite(choice))
            ):
                raise SchemaError(f"{where} ({name}): choices must be text or numbers, not {choice!r}")
            if str(choice) in seen:  # the form and the CSV compare choices as text
                raise SchemaError(f"{where} ({name}): choice {str(choice)!r} is listed twice")
            seen.add(str(choice))
        default = item.get("default")
        if default is not None and default not in choices:
            raise SchemaError(f"{where} ({name}): default {default!r} is not one of the choices")
        return Feature(name=name, type=kind, choices=tuple(choices), default=default, unit=str(item.get("unit", "")))
    if kind == "text":
        return Feature(name=name, type=kind, default=item.get("default"))
    if kind == "image":
        return _parse_image(item, where, name)
    low, high, default = (_optional_number(item.get(k), where, name, k) for k in ("min", "max", "default"))
    if low is not None and high is not None and low > high:
        raise SchemaError(f"{where} ({name}): min {low:g} is above max {high:g}")
    return Feature(name=name, type=kind, min=low, max=high, default=default, unit=str(item.get("unit", "")))


def _parse_image(item: Mapping[str, Any], where: str, name: str) -> Feature:
    sizes = {}
    for key in ("height", "width"):
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
            raise SchemaError(f'{where} ({name}): an image needs "{key}", a whole number of pixels from 1 to 4096')
        sizes[key] = value
    channels, scale, resize = item.get("channels", 3), item.get("scale", "0..255"), item.get("resize", "stretch")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise SchemaError(f'{where} ({name}): "channels" must be 1 (grayscale) or 3 (RGB), not {channels!r}')
    if scale not in IMAGE_SCALES:
        raise SchemaError(f'{where} ({name}): "scale" must be one of {", ".join(IMAGE_SCALES)}, not {scale!r}')
    if resize not in IMAGE_RESIZES:
        raise SchemaError(f'{where} ({name}): "resize" must be one of {", ".join(IMAGE_RESIZES)}, not {resize!r}')
    return Feature(name=name, type="image", channels=channels, scale=scale, resize=resize, **sizes)


def _optional_number(value: Any, where: str, name: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SchemaError(f'{where} ({name}): "{key}" must be a finite number, not {value!r}')
    if abs(value) > LARGEST:  # the form's number inputs (JavaScript numbers) cannot show more
        raise SchemaError(f'{where} ({name}): "{key}" must be between {-LARGEST:g} and {LARGEST:g}')
    return float(value)


def _parse_output(item: Any, where: str) -> Output:
    if not isinstance(item, Mapping):
        raise SchemaError(f'{where} must be an object with "type": one of {", ".join(OUTPUT_TYPES)}')
    kind = item.get("type")
    if kind not in OUTPUT_TYPES:
        raise SchemaError(f"{where}: type {kind!r} is not one of {', '.join(OUTPUT_TYPES)}")
    labels = item.get("labels")
    if kind == "classification":
        if not isinstance(labels, list) or len(labels) < 2:
            raise SchemaError(f'{where}: a classification needs "labels", one per class (at least 2)')
    elif kind == "binary":
        labels = labels if labels is not None else ["0", "1"]
        if not isinstance(labels, list) or len(labels) != 2:
            raise SchemaError(f'{where}: a binary output needs exactly 2 "labels" (negative first)')
    else:
        labels = []
    if any(isinstance(label, bool) or not isinstance(label, (str, int, float)) for label in labels):
        raise SchemaError(f'{where}: "labels" must be text or numbers')
    labels = [str(label) for label in labels]
    if len(set(labels)) != len(labels):
        raise SchemaError(f'{where}: "labels" has duplicates')
    threshold = item.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise SchemaError(f'{where}: "threshold" must be a number between 0 and 1')
    return Output(
        type=kind,
        labels=tuple(labels),
        threshold=float(threshold),
        name=str(item.get("name") or "prediction"),
        unit=str(item.get("unit") or ""),
    )


def parse_schema_json(raw: bytes, where: str) -> Schema:
    """Schema JSON bytes (a schema_url, a --schema file) -> Schema, with a clear error for bad JSON."""
    return parse_schema(jsontext.loads(raw, where, SchemaError, "fix the file and publish it again"), where)


def infer_schema(model: ServableModel) -> Schema:
    """A schema from the model alone: x0..x{n-1} (or input names), output type from the last activation."""
    if model.named_inputs:
        features = tuple(
            _image_feature(i.name, i) if i.is_image else Feature(name=i.name, type="text" if i.is_string else "number")
            for i in model.inputs
        )
    elif model.inputs[0].is_image:
        features = (_image_feature("image", model.inputs[0]),)
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


def _image_feature(name: str, info: InputInfo) -> Feature:
    """An image feature for a model input of per-row shape (H, W, C) or (H, W): pixels as they are, stretched."""
    height, width = int(info.shape[0]), int(info.shape[1])  # type: ignore[arg-type]
    channels = int(info.shape[2]) if len(info.shape) == 3 else 1  # type: ignore[arg-type]
    return Feature(name=name, type="image", height=height, width=width, channels=channels)


def _check_image(feature: Feature, info: InputInfo, where: str) -> None:
    """An image feature must ask for the pixel grid the model input takes."""
    if not info.is_image:
        raise SchemaError(
            f"{where}: feature {feature.name!r} is an image, but the model input takes shape {info.shape} per row; "
            "make it a number, a category or text"
        )
    expected = _image_feature(feature.name, info)
    if (feature.height, feature.width, feature.channels) != (expected.height, expected.width, expected.channels):
        raise SchemaError(
            f"{where}: image {feature.name!r} is {feature.height}×{feature.width} with {feature.channels} channel(s) "
            f"but the model takes {expected.height}×{expected.width} with {expected.channels}; "
            "give the model's height, width and channels"
        )


def check_against_model(schema: Schema, model: ServableModel, where: str = "the schema") -> None:
    """Refuse a schema whose features or output disagree with what the model takes and gives."""
    if model.named_inputs:
        inputs = {i.name for i in model.inputs}
        names = set(schema.names)
        if inputs != names:
            missing, extra = sorted(inputs - names), sorted(names - inputs)
            raise SchemaError(
                f"{where} disagrees with the model: the model's inputs are {', '.join(sorted(inputs))}"
                + (f"; missing from the schema: {', '.join(missing)}" if missing else "")
                + (f"; not model inputs: {', '.join(extra)}" if extra else "")
                + "; fix the schema's feature names"
            )
        by_name = {i.name: i for i in model.inputs}
        for feature in schema.features:
            if feature.type == "image":
                _check_image(feature, by_name[feature.name], where)
            elif by_name[feature.name].is_image:
                raise SchemaError(
                    f"{where}: the model input {feature.name!r} takes an image of shape {by_name[feature.name].shape} "
                    'per row; give the feature "type": "image" with its height, width and channels'
                )
    elif model.inputs[0].is_image:
        if len(schema.features) != 1 or schema.features[0].type != "image":
            raise SchemaError(
                f"{where} lists {len(schema.features)} feature(s) but the model takes one image of shape "
                f'{model.inputs[0].shape} per row; list one feature of "type": "image"'
            )
        _check_image(schema.features[0], model.inputs[0], where)
    else:
        width = int(model.inputs[0].shape[0])
        if len(schema.features) != width:
            raise SchemaError(
                f"{where} lists {len(schema.features)} features but the model takes {width} per row; "
                "list one feature per model input column, in order"
            )
        text = [f.name for f in schema.features if f.type in ("text", "image")]
        if text:
            kind = "an image" if schema.features[schema.names.index(text[0])].type == "image" else "text"
            raise SchemaError(
                f"{where}: feature {text[0]!r} is {kind}, but the model takes numbers only; "
                "make it a number or a category"
            )
    out, units = schema.output, model.output_units
    if out.type == "classification" and len(out.labels) != units:
        raise SchemaError(
            f"{where} lists {len(out.labels)} labels but the model gives {units} class scores; "
            "list one label per class, in the model's order"
        )
    if out.type in ("binary", "regression") and units != 1:
        raise SchemaError(
            f"{where} says the output is {out.type} but the model gives {units} values per row; "
            'use "classification" with one label per class'
        )
