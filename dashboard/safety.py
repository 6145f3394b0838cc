"""The security boundary: what is checked in a model file before Keras ever reads it.

Keras' own safe mode refuses lambdas it deserializes; these checks come first and refuse what safe mode does not
cover: archive tricks (paths outside, links, bombs), and configs naming code outside Keras (the CVE-2025-1550
pattern) or layers that load other files (TFSMLayer).
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from dashboard.errors import ModelLoadError, UnsafeModelError

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MAX_ARCHIVE_ENTRIES = 1000
MAX_UNPACKED_BYTES = 4 << 30
MAX_COMPRESSION_RATIO = 200
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


def check_archive(path: Path, safe_mode: bool = True) -> None:
    """Refuse .keras archives with unsafe paths, links, bombs, or (in safe mode) code-running config."""
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
            if (
                member.compress_size
                and member.file_size / member.compress_size > MAX_COMPRESSION_RATIO
                and member.file_size > (1 << 20)
            ):
                raise UnsafeModelError(
                    f"{path.name}: {name!r} unpacks to {member.file_size} bytes from "
                    f"{member.compress_size} (a compression bomb); refused"
                )
        if unpacked > MAX_UNPACKED_BYTES:
            raise UnsafeModelError(
                f"{path.name} unpacks to {unpacked} bytes, over the {MAX_UNPACKED_BYTES} limit; refused"
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
            config = json.loads(archive.read("config.json"))
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise ModelLoadError(
                f"{path.name}: config.json is not valid JSON; the file is damaged: re-export and republish it"
            ) from exc
    if safe_mode:
        scan_config(config, path.name)


def scan_config(config: Any, where: str) -> None:
    """Refuse configs that would run code on load: Lambda, TFSMLayer, or functions from non-Keras modules."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
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


def check_h5(path: Path, safe_mode: bool) -> None:
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
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise ModelLoadError(f"{path.name}: its model_config is not valid JSON; re-export and republish it") from exc
    if safe_mode:
        scan_config(config, path.name)
