"""The lean runtime: a LiteRT (TFLite) flatbuffer served without TensorFlow, and the conversion that makes one.

`load` needs only `ai-edge-litert` (requirements-lean.txt); `convert` and `parity` need TensorFlow, on the machine
that publishes. A LiteModel satisfies contract.ServableModel, as loader.LoadedModel does, so the schema, predict
and UI code serve either runtime unchanged.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dashboard.contract import Batch, InputInfo, ServableModel
from dashboard.errors import ModelLoadError
from dashboard.loading.runtime import holding

TOLERANCE = 1e-5  # largest absolute difference allowed between Keras and LiteRT outputs


@dataclass
class LiteModel:
    """A LiteRT interpreter with the LoadedModel surface: inputs, output size, a thread-safe batch call."""

    interpreter: Any
    inputs: tuple[InputInfo, ...]
    named_inputs: bool
    output_units: int
    output_activation: str | None = None
    format: str = ".tflite"
    load_seconds: float = 0.0
    weight_bytes: int = 0  # the flatbuffer's size (the interpreter holds it whole)
    chunk_rows: int = 8192  # smaller batches than Keras: same speed here, far smaller interpreter buffers
    _indices: dict[str, int] = field(default_factory=dict, repr=False)
    _output_index: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _batch: int = -1

    def call(self, inputs: Batch) -> np.ndarray:
        """Outputs for a batch (same contract as LoadedModel.call)."""
        with holding(self._lock):
            rows = len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)
            if rows != self._batch:
                for info in self.inputs:
                    self.interpreter.resize_tensor_input(self._indices[info.name], [rows, *info.row_shape])
                self.interpreter.allocate_tensors()
                self._batch = rows
            for info in self.inputs:
                column = inputs[info.name] if isinstance(inputs, dict) else inputs
                self.interpreter.set_tensor(
                    self._indices[info.name], np.asarray(column, dtype=info.dtype).reshape(rows, *info.row_shape)
                )
            self.interpreter.invoke()
            return np.array(self.interpreter.get_tensor(self._output_index), dtype=np.float64).reshape(rows, -1)


def load(path: Path) -> LiteModel:
    """A .tflite file -> LiteModel (imports ai-edge-litert only)."""
    started = time.perf_counter()
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ModelLoadError(
            "the LiteRT runtime is not installed; install requirements-lean.txt "
            "(pip install ai-edge-litert) or set MODEL_RUNTIME=keras"
        ) from exc
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=2)
        details = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"{path.name} is not a LiteRT model this runtime can run ({exc}); republish the version with --lean"
        ) from exc
    if len(outputs) != 1:
        raise ModelLoadError(f"{path.name} has {len(outputs)} outputs; the dashboard serves models with one output")
    infos, indices = [], {}
    signature = interpreter.get_signature_list().get("serving_default", {})
    names = signature.get("inputs") or []
    for i, detail in enumerate(details):
        name = _input_name(detail["name"], names, i, len(details))
        shape = tuple(int(d) for d in detail["shape_signature"][1:])
        infos.append(InputInfo(name=name, shape=shape, dtype=np.dtype(detail["dtype"]).name))
        indices[name] = detail["index"]
    if any(info.dtype in ("object", "bytes_", "str_") for info in infos):
        raise ModelLoadError(
            f"{path.name} takes text inputs, which the lean runtime does not serve; "
            "use MODEL_RUNTIME=keras for this version"
        )
    named = len(infos) > 1
    units = int(np.prod(outputs[0]["shape_signature"][1:])) if len(outputs[0]["shape_signature"]) > 1 else 1
    model = LiteModel(
        interpreter=interpreter,
        inputs=tuple(infos),
        named_inputs=named,
        output_units=units,
        _indices=indices,
        _output_index=outputs[0]["index"],
    )
    model.load_seconds = time.perf_counter() - started
    model.weight_bytes = path.stat().st_size
    return model


def convert(keras_model: Any) -> bytes:
    """Keras model -> LiteRT flatbuffer (needs TensorFlow); refuses what LiteRT cannot run."""
    from dashboard.loading.keras_model import _keras

    _keras()
    import tensorflow as tf

    if any(t.dtype == tf.string or getattr(t.dtype, "name", "") == "string" for t in keras_model.inputs):
        raise ModelLoadError("the model takes text inputs, which LiteRT cannot run; it stays Keras-only")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its SavedModel signature
            converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # the lean stack has no TF ops
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError and others for unsupported ops
        first = str(exc).strip().splitlines()
        reason = next(
            (line.strip() for line in first if "op" in line.lower()), first[0] if first else type(exc).__name__
        )
        raise ModelLoadError(f"LiteRT cannot run this model ({reason[:200]}); it stays Keras-only") from exc


def parity(keras_loaded: ServableModel, lite_model: LiteModel, samples: Batch) -> float:
    """Largest absolute difference between the two runtimes on the sample rows."""
    return float(np.max(np.abs(keras_loaded.call(samples) - lite_model.call(samples))))


def _input_name(raw: str, names: list[str], index: int, count: int) -> str:
    """serving_default_<name>:0 -> <name> (the Keras input name the schema uses)."""
    base = raw.split(":")[0]
    if base.startswith("serving_default_"):
        base = base[len("serving_default_") :]
    if base in names:
        return base
    return names[index] if count == len(names) and index < len(names) else base
