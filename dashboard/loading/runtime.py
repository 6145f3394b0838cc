"""Which runtime this machine can serve, TensorFlow imported without its start-up chatter, and the model lock a
small request on the event loop may take without waiting."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator


def import_tensorflow_quietly() -> None:
    """A command line shows only its own words: TensorFlow's C++ log level set before it is imported, and the lines
    its native libraries print while loading (oneDNN, absl) kept off the terminal. --debug shows them all."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
            return
    except ImportError:  # an import hook refuses it: the lean stack
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)  # the native libraries write to fd 2 directly, not to sys.stderr
            with contextlib.suppress(Exception):  # a broken install is reported by the command that needs it
                import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def keras_available() -> bool:
    """True when Keras (and so TensorFlow) can be imported here."""
    try:
        import keras  # noqa: F401
    except Exception:  # ImportError, or a broken install: either way the Keras runtime cannot serve
        return False
    return True


def litert_available() -> bool:
    """True when the LiteRT runtime can be imported here (needed to check a converted model)."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


class ModelBusy(Exception):
    """The model is in another call (or not compiled yet) and the caller asked not to wait: see not_waiting()."""


_caller = threading.local()


@contextlib.contextmanager
def not_waiting() -> Iterator[None]:
    """Within the block a model call that would wait for another one, or compile first, raises ModelBusy instead:
    a small request may then run on the event loop (no thread hop) but never blocks it behind a page's large batch."""
    _caller.hurry = True
    try:
        yield
    finally:
        _caller.hurry = False


@contextlib.contextmanager
def holding(lock: threading.Lock, ready: bool = True) -> Iterator[None]:
    """The model's lock for one call (every runtime's call is behind one: a shared interpreter is not thread-safe);
    under not_waiting() taken only if free at once and the model is ready."""
    if getattr(_caller, "hurry", False):
        if not ready or not lock.acquire(blocking=False):
            raise ModelBusy
    else:
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
