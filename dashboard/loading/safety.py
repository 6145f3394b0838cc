"""The security boundary: what is checked in a model file before Keras ever reads it.

Keras' own safe mode refuses lambdas it deserializes; these checks come first and refuse what safe mode does not
cover: archive tricks (paths outside, links, bombs), and configs naming code outside Keras (the CVE-2025-1550
pattern) or layers that load other files (TFSMLayer).
"""

from __future__ import annotations

import math
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from dashboard.common import jsontext
from dashboard.common.files import format_bytes
from dashboard.contract import ModelLimits
from dashboard.errors import ModelLoadError, UnsafeModelError

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_ARCHIVE_ENTRIES = 1000
MAX_COMPRESSION_RATIO = 100  # per member over SMALL_MEMBER: trained weights compress about 1.1:1
MAX_TOTAL_RATIO = 20  # the whole archive
SMALL_MEMBER = 64 << 10  # below this a high ratio is harmless (config.json compresses well)
MAX_CONFIG_BYTES = 64 << 20
UNSAFE_CLASSES = {
    "Lambda": "a Lambda layer",
    "TFSMLayer": "a TFSMLayer (it loads a SavedModel from a path)",
    "__lambda__": "a Python lambda",
}
FIX_SAFE = (
    "replace it with a registered custom layer, or set MODEL_SAFE_MODE=false only if you trust whoever wrote the file"
)

FileFormat = Literal["keras", "h5", "unknown"]


def sniff_format(path: Path) -> FileFormat:
    """'keras' for a .keras zip archive, 'h5' for HDF5, else 'unknown'."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path.name}: {exc.strerror}") from exc
    if head.startswith(ZIP_MAGIC):
        return "keras"
    if head == HDF5_MAGIC:
        return "h5"
    return "unknown"


def check_archive(path: Path, safe_mode: bool = True, limits: ModelLimits = ModelLimits()) -> None:
    """Refuse .keras archives with unsafe paths, links, bombs, a model too large to afford, or (in safe mode)
    code-running config."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelLoadError(
            f"{path.name} is not a valid .keras archive ({exc}); "
            "re-export the model with model.save('model.keras') and republish it"
        ) from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ARCHIVE_ENTRIES:
            raise UnsafeModelError(
                f"{path.name} holds {len(members)} files (at most {MAX_ARCHIVE_ENTRIES}); "
                "this is not a Keras model archive"
            )
        unpacked = 0
        for member in members:
            name = member.filename
            pure = PurePosixPath(name.replace("\\", "/"))
            if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
                raise UnsafeModelError(
                    f"{path.name} contains the path {name!r}, which points outside the archive; "
                    "refused: this is not a file Keras wrote"
                )
            if stat.S_ISLNK(member.external_attr >> 16):
                raise UnsafeModelError(f"{path.name} contains a link ({name!r}); refused: Keras archives hold no links")
            unpacked += member.file_size
            if member.file_size > SMALL_MEMBER and member.file_size > MAX_COMPRESSION_RATIO * member.compress_size:
                raise UnsafeModelError(
                    f"{path.name}: {name!r} unpacks to {member.file_size} bytes from "
                    f"{member.compress_size} (a compression bomb); refused"
                )
        packed = max(1, path.stat().st_size)
        if unpacked > SMALL_MEMBER and unpacked > MAX_TOTAL_RATIO * packed:
            raise UnsafeModelError(
                f"{path.name} unpacks to {format_bytes(unpacked)} from {format_bytes(packed)} "
                f"({unpacked / packed:.0f}:1, a compression bomb); refused"
            )
        if unpacked > limits.max_unpacked_bytes:
            raise UnsafeModelError(
                f"{path.name} unpacks to {format_bytes(unpacked)}, over the {format_bytes(limits.max_unpacked_bytes)} "
                "limit (MODEL_MAX_UNPACKED_BYTES); refused: raise it if this model is expected to be that large"
            )
        names = {m.filename for m in members}
        if "config.json" not in names:
            raise ModelLoadError(
                f"{path.name} has no config.json, so it is not a Keras 3 model archive; "
                "re-export it with model.save('model.keras') and republish it"
            )
        info = archive.getinfo("config.json")
        if info.file_size > MAX_CONFIG_BYTES:
            raise UnsafeModelError(f"{path.name}: config.json is {info.file_size} bytes; refused as too large")
        try:
            raw = archive.read("config.json")
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelLoadError(
                f"{path.name}: config.json cannot be read; the file is damaged: re-export and republish it"
            ) from exc
        config = jsontext.loads(
            raw, f"{path.name}: config.json", ModelLoadError, "the file is damaged: re-export and republish it"
        )
    check_config(config, path.name, safe_mode, limits)


def check_config(config: Any, where: str, safe_mode: bool, limits: ModelLimits) -> None:
    """A model config's size within the limits, and (in safe mode) nothing in it that would run code."""
    if safe_mode:
        scan_config(config, where)
    parameters, outputs = estimate_size(config)
    if parameters > limits.max_parameters:
        raise ModelLoadError(
            f"{where} declares about {parameters:,} parameters, over the limit of {limits.max_parameters:,} "
            "(MODEL_MAX_PARAMETERS); refused before building it: raise the limit if this model is expected to be "
            "that large"
        )
    if outputs is not None and outputs > limits.max_outputs:
        raise ModelLoadError(
            f"{where} gives {outputs:,} values per row, over the limit of {limits.max_outputs:,} "
            "(MODEL_MAX_OUTPUTS); refused before building it: raise the limit if this model is expected to be "
            "that wide"
        )


def estimate_size(config: Any) -> tuple[int, int | None]:
    """(parameters, values per output row) as a Keras config declares them, read without building anything.

    Counts the layers that hold most weights (Dense-like `units`, convolutions' `filters`, embeddings); others
    add little. The input width of a layer comes from its saved build_config.
    """
    parameters = 0
    layers: dict[str, dict] = {}
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        inner = node.get("config")
        if not isinstance(node.get("class_name"), str) or not isinstance(inner, dict):
            continue
        if isinstance(inner.get("name"), str):
            layers[inner["name"]] = node
        parameters += _layer_parameters(inner, _input_width(node))
    return parameters, _output_width(config, layers)


def _layer_parameters(config: dict, width: int) -> int:
    def number(key: str) -> int:
        value = config.get(key)
        return value if isinstance(value, int) and value > 0 else 0

    if number("units"):
        return number("units") * (width + 1)
    if number("filters"):
        kernel = config.get("kernel_size")
        size = math.prod(k for k in kernel if isinstance(k, int)) if isinstance(kernel, list) else number("kernel_size")
        return number("filters") * (max(size, 1) * width + 1)
    return number("input_dim") * number("output_dim")


def _input_width(layer: dict) -> int:
    """The last dimension of the layer's saved input shape (1 when unknown)."""
    build = layer.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None
    while isinstance(shape, list) and shape and isinstance(shape[0], list):  # several inputs: the first
        shape = shape[0]
    last = shape[-1] if isinstance(shape, list) and shape else None
    return last if isinstance(last, int) and last > 0 else 1


def _output_width(config: Any, layers: dict[str, dict]) -> int | None:
    """`units` of the model's output layer (functional: output_layers; sequential: the last layer)."""
    inner = config.get("config") if isinstance(config, dict) else None
    if not isinstance(inner, dict):
        return None
    outputs = inner.get("output_layers")
    if isinstance(outputs, list) and outputs:
        first = outputs[0]
        name = first[0] if isinstance(first, list) and first else first
        layer = layers.get(name) if isinstance(name, str) else None
    else:
        listed = inner.get("layers")
        layer = listed[-1] if isinstance(listed, list) and listed and isinstance(listed[-1], dict) else None
    units = layer.get("config", {}).get("units") if isinstance(layer, dict) else None
    return units if isinstance(units, int) else None


def scan_config(config: Any, where: str) -> None:
    """Refuse configs that would run code on load: Lambda, TFSMLayer, or functions from non-Keras modules.

    compile_config is skipped: the dashboard loads with compile=False, so Keras never deserializes the loss or
    metrics there (a plain Python loss is "module": "builtins", and harmless here).
    """
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            node = {key: value for key, value in node.items() if key != "compile_config"}
            cls = node.get("class_name")
            if isinstance(cls, str) and cls in UNSAFE_CLASSES:
                raise UnsafeModelError(
                    f"{where} uses {UNSAFE_CLASSES[cls]}, which can run arbitrary code "
                    f"when loaded; refused under safe mode: {FIX_SAFE}"
                )
            module = node.get("module")
            if isinstance(module, str) and module and not _keras_module(module):
                raise UnsafeModelError(
                    f"{where} names the Python module {module!r}, which is not part of Keras; "
                    f"loading it could run code; refused under safe mode: {FIX_SAFE}"
                )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _keras_module(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def check_h5(path: Path, safe_mode: bool, limits: ModelLimits = ModelLimits()) -> None:
    """Refuse HDF5 files that hold no full model, a damaged config, or (in safe mode) code-running config."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
    except OSError as exc:
        raise ModelLoadError(
            f"{path.name} is not a readable HDF5 file; the file is damaged: re-export and republish it"
        ) from exc
    if raw is None:
        raise ModelLoadError(
            f"{path.name} holds weights only, not a full model; publish it with its architecture "
            "(MODEL_ARCHITECTURE_URL + MODEL_WEIGHTS_URL) or save the whole model as .keras"
        )
    config = jsontext.loads(raw, f"{path.name}: its model_config", ModelLoadError, "re-export and republish it")
    check_config(config, path.name, safe_mode, limits)
