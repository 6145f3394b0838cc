"""Giving memory back: after a large batch, freed heap pages are returned to the OS (a dyno is billed by RSS)."""

from __future__ import annotations

import ctypes
import gc


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc malloc_trim)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
