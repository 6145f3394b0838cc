"""Rebuild the embedded image demo store: `python -m dashboard.demo.digits` (needs scikit-learn for the data).

Trains two small CNNs on scikit-learn's bundled handwritten digits (8×8, upscaled to 32×32 grayscale: nothing is
fetched), saves them as .keras beside a manifest whose schema states the preprocessing, writes sample PNGs (one per
digit, from images held out of training), then adds a parity-checked LiteRT artifact and the training images'
reference statistics (for drift) to each version. Serve it with
MODEL_MANIFEST_URL=dashboard/demo/digits/manifest.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "digits"
SIZE = 32
LABELS = [str(d) for d in range(10)]
SCHEMA = {
    "features": [
        {"name": "digit", "type": "image", "height": SIZE, "width": SIZE, "channels": 1, "scale": "0..1",
         "resize": "pad"},
    ],
    "output": {"type": "classification", "labels": LABELS},
}  # fmt: skip


def images() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images n×32×32, labels): scikit-learn's digits, white ink on black, upscaled with Pillow."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = np.clip(digits.images * (255 / 16), 0, 255).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(i).resize((SIZE, SIZE), Image.Resampling.BILINEAR)) for i in small])
    return big, digits.target.astype("int64")


def build(folder: Path = HERE) -> dict:
    """Train, save and describe both versions and the samples; returns the manifest written."""
    import keras
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    x_all, y_all = images()
    order = np.random.default_rng(7).permutation(len(x_all))
    held = order[:200]  # samples come from here, never trained on
    train = order[200:]
    x, y = x_all[train, :, :, None] / 255.0, y_all[train]
    keras.utils.set_random_seed(7)
    versions = [
        ("1.0.0", [8], 8, "First release: one convolution of 8 filters.", "2026-11-20"),
        ("1.1.0", [8, 16], 10, "Two convolutions (8 and 16 filters), a quarter of the weights.", "2026-12-01"),
    ]
    entries = []
    for label, filters, epochs, notes, created in versions:
        inputs = keras.Input((SIZE, SIZE, 1), name="digit")
        h = inputs
        for count in filters:
            h = keras.layers.Conv2D(count, 3, activation="relu", padding="same")(h)
            h = keras.layers.MaxPooling2D(2)(h)
        h = keras.layers.Flatten()(h)
        outputs = keras.layers.Dense(10, activation="softmax", name="digit_class")(h)
        model = keras.Model(inputs, outputs, name=f"digits_{label.replace('.', '_')}")
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["acc"])
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        accuracy = float(model.evaluate(x_all[held, :, :, None] / 255.0, y_all[held], verbose=0)[1])
        path = folder / f"digits-{label}.keras"
        model.save(path)
        entries.append(
            {
                "version": label,
                "url": path.name,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "schema": SCHEMA,
                "notes": f"{notes} Accuracy on 200 held-out digits {accuracy:.1%}.",
                "created": created,
            }
        )
    manifest = {"name": "digits-classifier", "aliases": {"stable": "1.0.0"}, "versions": entries[::-1]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    samples = folder / "samples"
    samples.mkdir(exist_ok=True)
    for digit in range(10):
        index = next(i for i in held if y_all[i] == digit)
        Image.fromarray(x_all[index]).save(samples / f"digit-{digit}.png")
    from dashboard.demo.build import add_lean_artifacts

    add_lean_artifacts(folder)
    add_reference(x_all[train], folder)
    return json.loads((folder / "manifest.json").read_text())


def add_reference(training: np.ndarray, folder: Path = HERE) -> None:
    """Every version's reference statistics from the training images (`publish --reference FOLDER`)."""
    import tempfile

    from PIL import Image

    from dashboard.config import load_settings
    from dashboard.service.publish import add_reference as add

    with tempfile.TemporaryDirectory() as work:
        images = Path(work) / "train"
        images.mkdir()
        for index, pixels in enumerate(training):
            Image.fromarray(pixels).save(images / f"{index:04d}.png")
        settings = load_settings({"MODEL_CACHE_DIR": str(Path(work) / "cache")}, secrets={})
        for entry in json.loads((folder / "manifest.json").read_text())["versions"]:
            add(str(folder), entry["version"], images, settings)
    (folder / ".publish.lock").unlink(missing_ok=True)


if __name__ == "__main__":
    written = build()
    print(json.dumps({v["version"]: v["notes"] for v in written["versions"]}, indent=2))
