"""One setting's text read as the type it holds (a boolean, a whole number, a number, one of a few words), and
Streamlit's secrets files read as the settings' second source; every refusal names the variable and what it takes."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dashboard.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}


_FALSE = {"0", "false", "no", "off"}


def section(value: object) -> dict | None:
    return value if isinstance(value, dict) else None


def read_secrets(env: Mapping[str, str]) -> dict[str, object]:
    """Top-level keys of Streamlit's secrets files (global first, project second, as Streamlit does), and the
    [auth] section (sign-in)."""
    merged: dict[str, object] = {}
    home = env.get("HOME")
    candidates = [Path(home) / ".streamlit" / "secrets.toml"] if home else []
    candidates.append(Path.cwd() / ".streamlit" / "secrets.toml")
    for path in candidates:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read secrets file {path}: {exc}; fix its TOML syntax or remove it") from exc
        merged.update({k: v for k, v in data.items() if not isinstance(v, dict) or k == "auth"})
    return merged


def choice(value: str | None, name: str, choices: tuple[str, ...]) -> Any:
    if value is None:
        return choices[0]
    for choice in choices:
        if value.lower() == choice:
            return choice
    raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")


def boolean(value: str | None, name: str, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a yes/no value; use true or false")


def integer(value: str | None, name: str, default: int | None, minimum: int = 1) -> int | None:
    if value is None:
        return default
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        example = default if default is not None else 1_000_000
        raise ConfigError(f"{name}={value!r} is not a whole number; use for example {example}") from None
    if number < minimum:
        raise ConfigError(f"{name}={value!r} must be at least {minimum}")
    return number


def number(value: str | None, name: str, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number of seconds; use for example {default}") from None
    if not number > 0:
        raise ConfigError(f"{name}={value!r} must be more than 0")
    return number
