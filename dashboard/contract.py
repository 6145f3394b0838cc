"""The contracts between modules, named: what a loaded model offers, and the closed sets of words the core uses.

Both runtimes (loader.LoadedModel for Keras, lite.LiteModel for LiteRT) satisfy `ServableModel`; schema, predict,
service and the UI rely on nothing else of a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

ModelKind = Literal["file", "architecture", "builder"]  # one .keras/.h5 file; JSON + weights; function + weights
FeatureType = Literal["number", "category", "text", "image"]
OutputType = Literal["classification", "binary", "regression"]
Runtime = Literal["keras", "litert"]
RuntimeChoice = Literal["auto", "keras", "litert"]  # MODEL_RUNTIME
ComparisonKind = Literal["labels", "values"]  # labels: classification / binary; values: regression
Bound = Literal["min", "max"]

FEATURE_TYPES: tuple[FeatureType, ...] = ("number", "category", "text", "image")
OUTPUT_TYPES: tuple[OutputType, ...] = ("classification", "binary", "regression")
RUNTIME_CHOICES: tuple[RuntimeChoice, ...] = ("auto", "keras", "litert")
IMAGE_SCALES = ("0..255", "0..1", "-1..1")  # an image feature's pixel scale (SPEC "Images")
IMAGE_RESIZES = ("stretch", "crop", "pad")  # how a file is brought to the model's size

Batch = np.ndarray | dict[str, np.ndarray]  # a 2-D float matrix, or one 1-D column per named input


@dataclass(frozen=True)
class InputInfo:
    """One model input: its name, per-row shape and dtype name ('float32', 'string', ...)."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    @property
    def is_string(self) -> bool:
        """True for tf.string inputs."""
        return self.dtype == "string"

    @property
    def is_image(self) -> bool:
        """True for a per-row shape (height, width, channels) with 1 or 3 channels, or (height, width), all fixed."""
        fixed = all(isinstance(d, int) and d > 0 for d in self.shape)
        return fixed and (len(self.shape) == 2 or (len(self.shape) == 3 and self.shape[2] in (1, 3)))

    @property
    def row_shape(self) -> tuple[int, ...]:
        """The per-row shape with unknown dimensions as 1 (what a batch is reshaped to)."""
        return tuple(1 if d in (None, -1) else d for d in self.shape)


@dataclass(frozen=True)
class ModelLimits:
    """What a model file may ask of the process before it is refused (settings MODEL_MAX_UNPACKED_BYTES,
    MODEL_MAX_PARAMETERS, MODEL_MAX_OUTPUTS): checked from the archive and the config, before Keras builds it."""

    max_unpacked_bytes: int = 1 << 30
    max_parameters: int = (1 << 30) // 4  # float32 weights filling max_unpacked_bytes
    max_outputs: int = 10_000


@runtime_checkable
class ServableModel(Protocol):
    """What predict needs from a loaded model, whichever runtime loaded it."""

    inputs: tuple[InputInfo, ...]
    named_inputs: bool  # True: one input per feature (a dict batch); False: one 2-D matrix
    output_units: int  # values per row: 1 (binary, regression) or one score per class
    output_activation: str | None  # the last layer's activation, for inferring a schema ("softmax", "sigmoid")
    format: str  # shown on the model card: ".keras", ".h5 (full model)", ".tflite", ...
    load_seconds: float
    chunk_rows: int  # rows per call on large batches
    weight_bytes: int  # the weights in memory (what the pool counts at least, against MODEL_MEMORY_MB)

    def call(self, inputs: Batch) -> np.ndarray:
        """Outputs for a batch as a 2-D float array, one row per input row; safe to call from many threads."""
        ...
