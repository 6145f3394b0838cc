"""File(s) on disk -> a loaded model: formats, safe mode, and the compiled call.

The checks made before Keras reads a file live in safety.py. TensorFlow and Keras are imported here only, and
only when a model is first loaded.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dashboard.common import jsontext
from dashboard.config import quiet_tensorflow
from dashboard.contract import Batch, InputInfo, ModelKind, ModelLimits
from dashboard.errors import ModelLoadError, UnsafeModelError, scrub
from dashboard.loading.runtime import holding
from dashboard.loading.safety import FIX_SAFE, check_archive, check_config, check_h5, sniff_format


@dataclass
class LoadedModel:
    """A Keras model ready to serve: the model, what it takes and gives, and a thread-safe compiled call."""

    model: Any
    format: str
    inputs: tuple[InputInfo, ...]
    named_inputs: bool
    output_units: int
    output_activation: str | None
    load_seconds: float = 0.0
    chunk_rows: int = 65536  # rows per compiled call on large batches
    weight_bytes: int = 0
    _fn: Callable | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call(self, inputs: Batch) -> np.ndarray:
        """Outputs for a batch: a 2-D float array (matrix input) or a dict of per-input columns."""
        import tensorflow as tf

        with holding(self._lock, ready=self._fn is not None):
            if self._fn is None:
                self._fn = self._compile(tf)
            if self.named_inputs:
                tensors = {
                    i.name: tf.constant(
                        inputs[i.name].reshape((-1,) + i.row_shape), dtype=tf.string if i.is_string else i.dtype
                    )
                    for i in self.inputs
                }
                out = self._fn(tensors)
            else:
                shaped = np.asarray(inputs).reshape((-1,) + self.inputs[0].row_shape)  # (n, H, W, 1) for (H, W)
                out = self._fn(tf.constant(shaped, dtype=self.inputs[0].dtype))
        return np.asarray(out)

    def _compile(self, tf: Any) -> Callable:
        model = self.model
        if self.named_inputs:
            spec = {
                i.name: tf.TensorSpec((None,) + i.row_shape, tf.string if i.is_string else i.dtype, name=i.name)
                for i in self.inputs
            }
        else:
            spec = tf.TensorSpec((None,) + self.inputs[0].row_shape, self.inputs[0].dtype)

        @tf.function(input_signature=[spec], reduce_retracing=True)
        def run(x: Any) -> Any:
            out = model(x, training=False)
            if isinstance(out, (list, tuple)):
                out = out[0]
            elif isinstance(out, dict):
                out = next(iter(out.values()))
            return tf.cast(out, tf.float64)

        return run


def load(
    kind: ModelKind,
    files: dict[str, Path],
    safe_mode: bool = True,
    builder: str | None = None,
    limits: ModelLimits = ModelLimits(),
) -> LoadedModel:
    """Load a version: kind 'file' (files['model']), 'architecture' or 'builder' (with files['weights'])."""
    started = time.perf_counter()
    if kind == "file":
        model, fmt = _load_file(files["model"], safe_mode, limits)
    elif kind == "architecture":
        model = _load_architecture(files["architecture"], files["weights"], safe_mode, limits)
        fmt = "architecture + weights"
    elif kind == "builder":
        model, fmt = _load_builder(builder or "", files["weights"]), "builder + weights"
    else:
        raise ModelLoadError(f"unknown model kind {kind!r}")
    loaded = describe_model(model, fmt)
    loaded.load_seconds = time.perf_counter() - started
    return loaded


def describe_model(model: Any, fmt: str) -> LoadedModel:
    """Wrap a Keras model: read its inputs and output so a schema can be inferred and the call compiled."""
    raw_inputs = getattr(model, "inputs", None)
    if not raw_inputs:
        raise ModelLoadError(
            "the model has no defined inputs (it was never built); build it with keras.Input(shape=...) before saving"
        )
    inputs = tuple(
        InputInfo(name=_input_name(t, n), shape=tuple(t.shape[1:]), dtype=_dtype_name(t.dtype))
        for n, t in enumerate(raw_inputs)
    )
    named = len(inputs) > 1 or isinstance(getattr(model, "_inputs_struct", None), dict) or inputs[0].is_string
    wide = [i for i in inputs if named and i.shape not in ((), (1,)) and not i.is_image]
    if wide:
        raise ModelLoadError(
            f"the model's input {wide[0].name!r} takes shape {wide[0].shape} per row; with several "
            "inputs the dashboard needs one value per input (shape (1,)), one CSV column each, "
            "or an image (height, width, 1 or 3 channels)"
        )
    if not named and len(inputs[0].shape) != 1 and not inputs[0].is_image:
        raise ModelLoadError(
            f"the model's input has shape {inputs[0].shape} per row; the dashboard serves models that take one row "
            "of features (shape (n,)), an image (height, width, 1 or 3 channels), or one named input per feature"
        )
    if not named and inputs[0].shape[0] is None:
        raise ModelLoadError("the model's input has no fixed number of features; give keras.Input a shape such as (4,)")
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        raise ModelLoadError(f"the model has {len(outputs)} outputs; the dashboard serves models with one output")
    shape = tuple(outputs[0].shape[1:])
    if len(shape) > 1 or (shape and shape[0] is None):
        raise ModelLoadError(f"the model's output has shape {shape} per row; expected one value or one score per class")
    return LoadedModel(
        model=model,
        format=fmt,
        inputs=inputs,
        named_inputs=named,
        output_units=int(shape[0]) if shape else 1,
        output_activation=_output_activation(model),
        weight_bytes=sum(int(np.prod(w.shape)) * np.dtype(str(w.dtype)).itemsize for w in model.weights),
    )


def _load_file(path: Path, safe_mode: bool, limits: ModelLimits) -> tuple[Any, str]:
    fmt = sniff_format(path)
    if fmt == "keras":
        check_archive(path, safe_mode, limits)
        with _named(path, ".keras") as named:
            return _keras_load(named, safe_mode), ".keras"
    if fmt == "h5":
        check_h5(path, safe_mode, limits)
        with _named(path, ".h5") as named:
            return _keras_load(named, safe_mode), ".h5 (full model)"
    raise ModelLoadError(
        f"{path.name} is neither a .keras archive nor an HDF5 (.h5) model file; "
        "check that the URL points to the model itself, not to a web page or a listing"
    )


def _load_architecture(architecture: Path, weights: Path, safe_mode: bool, limits: ModelLimits) -> Any:
    try:
        raw = architecture.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {architecture.name}: {exc.strerror}") from exc
    fix = "it must be the output of model.to_json(): re-export it and republish"
    config = jsontext.loads(raw, architecture.name, ModelLoadError, fix)
    text = raw.decode("utf-8-sig")
    check_config(config, architecture.name, safe_mode, limits)
    keras = _keras()
    from keras.src.saving import serialization_lib

    try:
        with serialization_lib.SafeModeScope(safe_mode):
            model = keras.models.model_from_json(text)
    except Exception as exc:  # Keras raises many types for a bad config
        raise _load_error(architecture.name, exc) from exc
    _load_weights(model, weights)
    return model


def _load_builder(builder: str, weights: Path) -> Any:
    module_name, _, function_name = builder.partition(":")
    if not module_name or not function_name:
        raise ModelLoadError(f"MODEL_BUILDER={builder!r} must look like package.module:function")
    _keras()
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(
            f"MODEL_BUILDER={builder!r} cannot be imported ({type(exc).__name__}: {exc}); "
            "check the module is installed and the function name"
        ) from exc
    try:
        model = function()
    except Exception as exc:
        raise ModelLoadError(f"MODEL_BUILDER={builder!r} failed when called ({type(exc).__name__}: {exc})") from exc
    _load_weights(model, weights)
    return model


def _load_weights(model: Any, weights: Path) -> None:
    try:
        with _named(weights, ".weights.h5") as path, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(path)
    except Exception as exc:
        raise ModelLoadError(
            f"the weights in {weights.name} do not fit the model ({type(exc).__name__}: "
            f"{_first_line(exc)}); publish the weights saved from this same architecture"
        ) from exc
    _refuse_partial_weights(caught, weights.name)


def _refuse_partial_weights(caught: list, name: str) -> None:
    """Keras only warns when some layers keep random weights; serving that would be silently wrong."""
    for warning in caught:
        text = str(warning.message)
        if "freshly-initialized" in text or "Skipping variable loading" in text:
            raise ModelLoadError(
                f"the weights in {name} do not cover every layer of the model ({_first_line(warning.message)}); "
                "publish the weights saved from this same architecture"
            )


def _keras_load(path: Path, safe_mode: bool) -> Any:
    keras = _keras()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception as exc:
        raise _load_error(path.name, exc) from exc
    _refuse_partial_weights(caught, path.name)
    return model


def _load_error(name: str, exc: BaseException) -> ModelLoadError:
    text = _first_line(exc)
    if "safe_mode" in text or "unsafe" in text.lower():
        return UnsafeModelError(f"{name} was refused by Keras safe mode ({text}); {FIX_SAFE}")
    return ModelLoadError(
        f"{name} could not be loaded by Keras ({type(exc).__name__}: {text}); "
        "re-export it with Keras 3 (model.save('model.keras')) and republish it"
    )


def _keras() -> Any:
    quiet_tensorflow()
    import keras

    return keras


@contextlib.contextmanager
def _named(path: Path, suffix: str) -> Iterator[Path]:
    """path itself when its name ends with suffix, else a link (or copy) that does, removed after the block.

    Keras picks the format by the file name; a presigned URL's cached file may have none.
    """
    if path.name.endswith(suffix):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="keras-dashboard-") as folder:
        named = Path(folder) / (path.stem + suffix)
        try:
            os.symlink(path.resolve(), named)
        except OSError:
            import shutil

            shutil.copyfile(path, named)
        yield named


def _first_line(exc: BaseException) -> str:
    text = scrub(str(exc)).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 240 else line[:237] + "..."


def _input_name(tensor: Any, index: int) -> str:
    name = getattr(tensor, "name", None) or f"input_{index}"
    return name.split(":")[0]


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    return "string" if name in ("string", "str", "object") else name


def _output_activation(model: Any) -> str | None:
    layers = getattr(model, "layers", None) or []
    for layer in reversed(layers):
        name = type(layer).__name__
        if name == "Softmax":
            return "softmax"
        activation = getattr(layer, "activation", None)
        if activation is not None:
            return getattr(activation, "__name__", str(activation))
        if name not in ("Dropout", "Activation", "Reshape", "Flatten"):
            return None
    return None
