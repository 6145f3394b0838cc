#!/bin/sh
# Streamlit on Heroku-style platforms: write the user's Streamlit config from the environment.
# Only [server] port / headless / address are set; every other key already in ~/.streamlit/config.toml
# is kept, and the project's .streamlit/config.toml (upload limit, error details off, theme) still applies
# on top. Idempotent: run it as often as you like. Locally: PORT=8600 sh setup.sh
set -eu
: "${PORT:=8501}"
export PORT
python - <<'PY'
import os
import tomllib
from pathlib import Path

path = Path.home() / ".streamlit" / "config.toml"
path.parent.mkdir(parents=True, exist_ok=True)
config = tomllib.loads(path.read_text()) if path.exists() else {}
server = config.setdefault("server", {})
server.update({"port": int(os.environ["PORT"]), "headless": True, "address": "0.0.0.0"})


def value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


lines = []
for section, keys in config.items():
    if not isinstance(keys, dict):
        continue
    lines.append(f"[{section}]")
    lines.extend(f"{key} = {value(v)}" for key, v in keys.items() if not isinstance(v, dict))
    lines.append("")
tmp = path.with_suffix(".toml.tmp")
tmp.write_text("\n".join(lines))
os.replace(tmp, path)
print(f"setup.sh: {path} serves on port {os.environ['PORT']}")
PY
