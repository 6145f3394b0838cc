"""JSON from files other people control (manifests, schemas, model configs): one parser that turns every
malformation — bad syntax, a wrong encoding, nesting deep enough to exhaust the stack — into the caller's typed
error, so a hostile file is one clear message and never a crash that loses the page's state."""

from __future__ import annotations

import json
from typing import Any

from dashboard.errors import DashboardError

MAX_DEPTH = 200  # no manifest, schema or Keras config comes near this


def loads(raw: bytes | str, where: str, error: type[DashboardError], fix: str) -> Any:
    """Parse raw as JSON; any failure is error(f"{where} ...; {fix}")."""
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        data = json.loads(text)
    except RecursionError:
        raise error(f"{where} is nested too deeply to be read (over {MAX_DEPTH} levels); {fix}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(f"{where} is not valid JSON ({_short(exc)}); {fix}") from exc
    if too_deep(data):
        raise error(f"{where} is nested too deeply to be read (over {MAX_DEPTH} levels); {fix}")
    return data


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """True when lists and objects nest more than limit levels (checked without recursion)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
    return False


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."
