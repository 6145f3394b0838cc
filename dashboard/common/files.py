"""Files on disk, said once: the atomic writer, the file lock, the size-capped stream and the byte-size wording.

Every module that writes a file (the download cache, the store a model is published to, the CLI's output) uses
`atomic_write`; every module that streams a body from somewhere uses `capped`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from dashboard.errors import ModelSourceError

CHUNK = 1 << 20  # one read or write block: 1 MiB
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: float) -> str:
    """A byte count as people read it, in binary units: 512 bytes, 97.7 KiB, 200 MiB, 1 GiB."""
    value, unit = float(n), _UNITS[0]
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    if unit == "bytes":
        return f"{int(n)} bytes"
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"


def too_large(shown: str, size: int | None, limit: int, setting: str) -> str:
    """The one wording of 'this is over a size limit' (size None: found out while streaming)."""
    what = f"{shown} is {format_bytes(size)}, over" if size is not None else f"{shown} is over"
    return f"{what} the {format_bytes(limit)} limit; raise {setting} if this file is expected to be that large"


def capped(
    blocks: Iterable[bytes], shown: str, total: int | None, limit: int, setting: str = "MODEL_MAX_BYTES"
) -> Iterator[tuple[bytes, int, int | None]]:
    """(block, bytes so far, total) for each block, refused before the limit is passed (declared or streamed)."""
    if total is not None and total > limit:
        raise ModelSourceError(too_large(shown, total, limit, setting))
    done = 0
    for block in blocks:
        done += len(block)
        if done > limit:
            raise ModelSourceError(too_large(shown, None, limit, setting))
        yield block, done, total


def before(
    started: float, seconds: float, blocks: Iterable[bytes], shown: str, setting: str = "MODEL_DOWNLOAD_TIMEOUT"
) -> Iterator[bytes]:
    """blocks, refused once `seconds` have passed since `started` (monotonic clock). Each block is bounded by the
    read timeout, so a body that trickles a byte at a time still ends at the deadline, with one clear message."""
    for block in blocks:
        yield block
        if time.monotonic() - started > seconds:
            raise ModelSourceError(
                f"{shown} took longer than {seconds:g} s to download ({setting}); check that the server is up, "
                f"or raise {setting} for a large file on a slow link"
            )


@contextlib.contextmanager
def atomic_write(target: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A handle to a temp file beside target; on a clean exit it is fsynced and renamed into place, else deleted.

    Readers see the old file or the whole new one, never a part. Raising inside the block (a wrong sha256,
    a full disk) leaves no partial file behind.
    """
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.part-", delete=False)
    tmp = Path(handle.name)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(target: Path, data: bytes, mode: int | None = None) -> None:
    """Write data to target atomically (see atomic_write)."""
    with atomic_write(target, mode) as handle:
        handle.write(data)


def copy_atomic(source: Path, target: Path, mode: int | None = None) -> None:
    """Copy source to target atomically, block by block."""
    with open(source, "rb") as reader, atomic_write(target, mode) as handle:
        for block in iter(lambda: reader.read(CHUNK), b""):
            handle.write(block)


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """An exclusive advisory lock on lock_file, held for the block (other processes wait)."""
    with open(lock_file, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
