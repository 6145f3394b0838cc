"""A store of three real models published with `publish --model NAME` (issue 27): the iris classifier (the
default, two versions), a house-price regression (two versions) and the digits CNN; shared by the catalog, Spark
and bench tests through the session fixture `catalog_store` (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dashboard import service
from dashboard.service.publish import PublishOptions, publish
from tests.support.helpers import DEMO

DIGITS = DEMO / "digits"
IRIS_SCHEMA = json.loads((DEMO / "manifest.json").read_text())["versions"][0]["schema"]
DIGITS_SCHEMA = json.loads((DIGITS / "manifest.json").read_text())["versions"][0]["schema"]
HOUSE_SCHEMA = {
    "features": [
        {"name": "rooms", "type": "number", "min": 1, "max": 8, "default": 3},
        {"name": "area", "type": "number", "min": 20, "max": 250, "default": 80, "unit": "m2"},
    ],
    "output": {"type": "regression", "name": "price", "unit": "k€"},
}
IRIS_ROW = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
HOUSES = [{"rooms": 2, "area": 55.0}, {"rooms": 5, "area": 140.0}, {"rooms": 3, "area": 80.0}]
ADMIN, ANALYST = "a" * 40, "b" * 40  # API tokens: admin may use every model, analyst not the digits model


def house_model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((2,), name="features")
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(4, activation="relu")(inputs)))


def build_catalog(folder: Path) -> dict:
    """A store of three models published with --model: iris (2 versions, the default), house (2), digits (1)."""
    store, work = folder / "store", folder / "work"
    work.mkdir()
    schemas = {}
    for name, schema in (("iris", IRIS_SCHEMA), ("house", HOUSE_SCHEMA), ("digits", DIGITS_SCHEMA)):
        schemas[name] = work / f"{name}.schema.json"
        schemas[name].write_text(json.dumps(schema))
    houses = {}
    for version, seed in (("1.0.0", 1), ("2.0.0", 2)):
        houses[version] = house_model(seed)
        houses[version].save(work / f"house-{version}.keras")
    published = [
        ("iris", DEMO / "iris-1.0.0.keras", "1.0.0", "Iris species from flower measurements"),
        ("iris", DEMO / "iris-1.1.0.keras", "1.1.0", None),
        ("house", work / "house-1.0.0.keras", "1.0.0", "House price from rooms and area"),
        ("house", work / "house-2.0.0.keras", "2.0.0", None),
        ("digits", DIGITS / "digits-1.0.0.keras", "1.0.0", "Handwritten digit from a 32×32 image"),
    ]
    for name, model, version, description in published:
        options = PublishOptions(schema_path=schemas[name], model_name=name, description=description)
        done = publish(model, version, str(store), options, settings=service.settings({"HOME": str(folder)}))
        assert done.catalog == str(store / "catalog.json")
    return {"store": store, "catalog": store / "catalog.json", "houses": houses}


def catalog_env(catalog_store, tmp_path, **extra) -> dict[str, str]:
    return {"MODEL_CATALOG_URL": str(catalog_store["catalog"]), "MODEL_CACHE_DIR": str(tmp_path / "cache"), **extra}


def expected_prices(catalog_store, version: str) -> np.ndarray:
    rows = np.array([[h["rooms"], h["area"]] for h in HOUSES], dtype="float32")
    return catalog_store["houses"][version].predict(rows, verbose=0)[:, 0]
