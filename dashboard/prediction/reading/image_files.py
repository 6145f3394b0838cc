"""Image files as rows (SPEC "Images"): a folder, a zip, several uploads, or a CSV whose image columns hold paths
relative to it. Every file is a row named by its path inside the folder or zip (the results' `file` column); a file
that is not an image becomes that row's error at validation, never the whole batch's.

Files are read lazily and handed on in chunks, so memory holds a chunk of images, not the folder.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import pandas as pd

from dashboard.errors import InputError
from dashboard.prediction.images import FILE_COLUMN, ImageFile
from dashboard.prediction.reading.table import InputTable

MAX_FILE_BYTES = 64 << 20  # one image file; larger ones are that row's error (a zip member may lie about its size)
CHUNK = 256  # images per chunk


def _hidden(parts: Iterable[str]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def folder_files(folder: Path) -> Iterator[ImageFile]:
    """Every file under the folder (hidden ones and symlinks leaving it skipped), by path, read one at a time."""
    root = folder.resolve()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if _hidden(relative.parts) or not path.is_file() or not path.resolve().is_relative_to(root):
            continue
        yield _read(relative.as_posix(), path)


def _read(name: str, path: Path) -> ImageFile:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return ImageFile(name, b"", problem=f"{size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit per file")
        return ImageFile(name, path.read_bytes())
    except OSError as exc:
        return ImageFile(name, b"", problem=f"cannot be read ({exc.strerror})")


def zip_files(source: Path | bytes) -> Iterator[ImageFile]:
    """Every file in a zip (folders, hidden files and macOS metadata skipped), by its path inside the zip."""
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"the zip cannot be opened ({exc}); send a .zip of image files") from None
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = info.filename
            if info.is_dir() or _hidden(PurePosixPath(name).parts):
                continue
            if info.file_size > MAX_FILE_BYTES:
                yield ImageFile(name, b"", problem=f"{info.file_size:,} bytes is over the per-file limit")
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_FILE_BYTES + 1)
            except Exception as exc:  # a damaged member, an unsupported compression, a wrong CRC
                yield ImageFile(name, b"", problem=f"cannot be unpacked ({type(exc).__name__})")
                continue
            if len(data) > MAX_FILE_BYTES:
                yield ImageFile(name, b"", problem="over the per-file limit once unpacked")
                continue
            yield ImageFile(name, data)


def source_files(path: Path) -> Iterator[ImageFile]:
    """The files of a folder, a zip, or one image file."""
    if path.is_dir():
        return folder_files(path)
    if path.suffix.lower() == ".zip":
        return zip_files(path)
    return iter([_read(path.name, path)])


def image_table(files: Iterable[ImageFile], feature: str) -> InputTable:
    """The rows validation takes: `file` (the name) and the feature's column holding the files."""
    files = list(files)
    frame = pd.DataFrame(
        {FILE_COLUMN: pd.Series([f.name for f in files], dtype=object), feature: pd.Series(files, dtype=object)}
    )
    return InputTable(frame)


def chunks(files: Iterable[ImageFile], feature: str, size: int = CHUNK) -> Iterator[InputTable]:
    """image_table of every `size` files, in order."""
    batch: list[ImageFile] = []
    for item in files:
        batch.append(item)
        if len(batch) == size:
            yield image_table(batch, feature)
            batch = []
    if batch:
        yield image_table(batch, feature)


def with_paths(table: InputTable, features: Iterable[str], folder: Path) -> InputTable:
    """A CSV whose image columns hold paths relative to `folder`: each path replaced by the file (a path outside
    the folder, or one that is not a file, stays text and validation says so for that row)."""
    root = folder.resolve()
    frame = table.frame.copy()
    for name in features:
        if name not in frame.columns:
            continue  # validation refuses the missing column with its usual message
        cells = []
        for cell in frame[name]:
            text = str(cell).strip() if isinstance(cell, str) else ""
            path = (root / text).resolve() if text else None
            if path is not None and path.is_relative_to(root) and path.is_file():
                cells.append(_read(text, path))
            else:
                cells.append(cell)
        frame[name] = pd.Series(cells, dtype=object, index=frame.index)
    return InputTable(frame, table.row_errors, table.decimal_comma, table.separator, table.decimal)
