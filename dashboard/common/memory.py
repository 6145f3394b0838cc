"""Memory: giving it back after a large batch (a dyno is billed by RSS), reading it, and the loaded models' budget."""

from __future__ import annotations

import ctypes
import gc
import os
from pathlib import Path


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc malloc_trim)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def rss_bytes() -> int:
    """This process's resident memory now (Linux /proc; 0 where that cannot be read)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def memory_limit() -> int | None:
    """The memory this process may use: the container's (cgroup v2, then v1: a dyno's size), else the machine's."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 50:  # "max", or v1's "no limit" (a huge number)
            return int(text)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return None


MODEL_SHARE = 4  # MODEL_MEMORY_MB unset: a quarter of the dyno's memory for loaded models (the runtime takes ~700 MB)


def model_budget(memory_mb: int | None) -> tuple[int | None, str]:
    """(bytes the loaded models may take, how that was decided, for the start-up log line)."""
    if memory_mb is not None:
        return memory_mb << 20, f"MODEL_MEMORY_MB={memory_mb}"
    limit = memory_limit()
    if limit is None:
        return None, "MODEL_MEMORY_MB unset and this machine's memory unknown: no bound"
    budget = limit // MODEL_SHARE
    return budget, f"MODEL_MEMORY_MB unset: a quarter of the {limit >> 20} MB this dyno has"
