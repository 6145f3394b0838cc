"""History records that cannot wait in memory, kept on local disk until the database answers: the queue past its
bound (HISTORY_QUEUE records or HISTORY_QUEUE_MB), and whatever still waits when the process stops (a Heroku
restart sends SIGTERM while the database may be down). One JSON line per record in files named by process and
time; a file is deleted once its records are written. The folder is bounded too (HISTORY_SPOOL_MB): past it a
record is dropped, counted and logged, never an unbounded disk.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from dashboard.common.files import format_bytes


class Spool:
    """A folder of JSON-lines files of history rows (see the module docstring)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def add(self, rows: list[dict[str, Any]]) -> int:
        """Append rows to a new file (fsynced); how many were kept (0 when the folder is over its bound)."""
        if not rows:
            return 0
        lines = [json.dumps(row, default=_encode, ensure_ascii=False) + "\n" for row in rows]
        with self._lock:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                return 0
            room = self.max_bytes - self.size()
            kept = []
            for line in lines:
                room -= len(line.encode())
                if room < 0:
                    break
                kept.append(line)
            if not kept:
                return 0
            name = f"{time.time_ns():020d}-{os.getpid()}.jsonl"
            partial = self.folder / f".{name}.part"
            try:
                with open(partial, "w", encoding="utf-8") as handle:
                    handle.writelines(kept)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(partial, self.folder / name)  # a reader never sees half a file
            except OSError:  # a full or read-only disk: nothing kept (the caller counts and logs the loss)
                partial.unlink(missing_ok=True)
                return 0
        return len(kept)

    def size(self) -> int:
        """Bytes spooled now."""
        return sum(p.stat().st_size for p in self.files())

    def files(self) -> list[Path]:
        """Spooled files, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.jsonl") if p.is_file())

    def read(self, path: Path) -> list[dict[str, Any]]:
        """A file's rows (a damaged line is skipped)."""
        rows = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("created_at"), str):
                row["created_at"] = datetime.fromisoformat(row["created_at"])
                rows.append(row)
        return rows

    def __str__(self) -> str:
        return f"{self.folder} ({format_bytes(self.size())} of {format_bytes(self.max_bytes)})"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
