"""Rebuild the embedded demo store: `python -m dashboard.demo.build` (needs scikit-learn for the iris data).

Trains two small classifiers on Fisher's iris data (bundled with scikit-learn), saves them as .keras,
writes manifest.json (sha256, schema, aliases) and sample.csv beside this file, then adds a parity-checked
LiteRT artifact to each version for the lean runtime. `--lean-only` redoes just that last step.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABELS = ["setosa", "versicolor", "virginica"]


def build(folder: Path = HERE) -> dict:
    """Train, save and describe both versions; returns the manifest written."""
    import keras
    from sklearn.datasets import load_iris

    iris = load_iris()
    x, y = iris.data.astype("float32"), iris.target.astype("int64")
    keras.utils.set_random_seed(7)
    order = np.random.default_rng(7).permutation(len(x))
    x, y = x[order], y[order]
    versions = [
        ("1.0.0", [8], 150, "First release: one hidden layer of 8 units.", "2026-01-31"),
        (
            "1.1.0",
            [16, 16],
            250,
            "Two hidden layers and input normalisation; better on versicolor/virginica.",
            "2026-03-15",
        ),
    ]
    entries = []
    for label, hidden, epochs, notes, created in versions:
        inputs = keras.Input((4,), name="features")
        h = inputs
        if len(hidden) > 1:
            norm = keras.layers.Normalization(name="normalise")
            norm.adapt(x)
            h = norm(h)
        for units in hidden:
            h = keras.layers.Dense(units, activation="relu")(h)
        outputs = keras.layers.Dense(3, activation="softmax", name="species")(h)
        model = keras.Model(inputs, outputs, name=f"iris_{label.replace('.', '_')}")
        model.compile(
            optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
        accuracy = float(model.evaluate(x, y, verbose=0)[1])
        path = folder / f"iris-{label}.keras"
        model.save(path)
        entries.append(
            {
                "version": label,
                "url": path.name,
                "sha256": _sha256(path),
                "schema": _schema(iris.data),
                "notes": f"{notes} Training accuracy {accuracy:.1%}.",
                "created": created,
            }
        )
    manifest = {"name": "iris-classifier", "aliases": {"stable": "1.0.0"}, "versions": entries[::-1]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _sample(iris, folder / "sample.csv")
    add_lean_artifacts(folder)
    add_references(iris, folder)
    return json.loads((folder / "manifest.json").read_text())


def add_references(iris, folder: Path = HERE) -> None:
    """Reference statistics of the training data for every version (`python -m dashboard convert --reference`)."""
    import tempfile

    import pandas as pd

    from dashboard.config import load_settings
    from dashboard.service.publish import add_reference

    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    with tempfile.TemporaryDirectory() as work:
        train = Path(work) / "iris-train.csv"
        pd.DataFrame(iris.data, columns=columns).to_csv(train, index=False)
        settings = load_settings({"MODEL_CACHE_DIR": str(Path(work) / "cache")}, secrets={})
        for entry in json.loads((folder / "manifest.json").read_text())["versions"]:
            add_reference(str(folder), entry["version"], train, settings)


def add_lean_artifacts(folder: Path = HERE) -> None:
    """Convert every version of the store in folder to LiteRT (the same path as `python -m dashboard convert`)."""
    from dashboard.config import load_settings
    from dashboard.service.publish import add_lean

    settings = load_settings({"MODEL_CACHE_DIR": str(folder / ".build-cache")}, secrets={})
    for old in folder.glob("*.tflite"):
        old.unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["versions"]:
        entry.pop("tflite_url", None)
        entry.pop("tflite_sha256", None)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for entry in manifest["versions"]:
        print(add_lean(str(folder), entry["version"], settings).lean.detail)
    (folder / ".publish.lock").unlink(missing_ok=True)


def _schema(data: np.ndarray) -> dict:
    features = []
    for i, name in enumerate(FEATURES):
        column = data[:, i]
        features.append(
            {
                "name": name,
                "type": "number",
                "min": float(np.floor(column.min())),
                "max": float(np.ceil(column.max())),
                "default": round(float(np.median(column)), 1),
                "unit": "cm",
            }
        )
    return {"features": features, "output": {"type": "classification", "labels": LABELS}}


def _sample(iris, path: Path) -> None:
    rows = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for index in list(range(0, 150, 5)):
        values = ",".join(f"{v:g}" for v in iris.data[index])
        rows.append(f"{values},{LABELS[iris.target[index]]}")
    path.write_text("\n".join(rows) + "\n")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    import sys

    if "--lean-only" in sys.argv:
        add_lean_artifacts()
    else:
        written = build()
        print(json.dumps({v["version"]: v["notes"] for v in written["versions"]}, indent=2))
