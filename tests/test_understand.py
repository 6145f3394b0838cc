"""Why, what if, and drift (issue 16): properties of the attributions on real small Keras models and on the demo
store's LiteRT artifacts, what-if against direct predictions, PSI against a hand-computed example, the page."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import service
from dashboard.errors import SchemaError
from dashboard.loading import keras_model
from dashboard.prediction import drift
from dashboard.prediction.reading.csv_files import read_csv
from dashboard.prediction.reading.table import InputTable
from dashboard.prediction.schema import parse_schema
from dashboard.service import understand
from dashboard.store.versions import FileRef, ModelVersion
from tests.support.helpers import DEMO, REPO, settings_for, shown

ROW = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


def served_from(model_path, schema: dict, reference_stats=None, runtime="keras") -> service.Served:
    from packaging.version import Version

    if runtime == "litert":
        from dashboard.loading import litert_model

        model = litert_model.load(model_path)
    else:
        model = keras_model.load("file", {"model": model_path})
    version = ModelVersion(
        version=Version("1"),
        kind="file",
        origin="test",
        model=FileRef(str(model_path)),
        schema=schema,
        reference=reference_stats,
    )
    return service.Served(
        version=version, model=model, schema=parse_schema(schema), schema_source="manifest", runtime=runtime
    )


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("linear")
    inputs = keras.Input((3,), name="x")
    layer = keras.layers.Dense(1)
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([np.array([[2.0], [-3.0], [0.5]]), np.array([1.0])])
    model.save(folder / "linear.keras")
    schema = {
        "features": [{"name": n, "default": d} for n, d in zip("abc", (1.0, 2.0, 3.0), strict=True)],
        "output": {"type": "regression", "name": "y"},
    }
    return served_from(folder / "linear.keras", schema)


def test_a_linear_model_is_explained_as_w_times_x_minus_reference(linear):
    done = understand.explain_row(linear, {"a": 4.0, "b": -1.0, "c": 7.0})
    found = done.attributions
    np.testing.assert_allclose(found.values[0], [2.0 * 3, -3.0 * -3, 0.5 * 4], rtol=1e-5)
    assert found.exact and found.target == ["y"]
    np.testing.assert_allclose(found.values.sum(), found.prediction[0] - found.reference[0], rtol=1e-5)


@pytest.mark.parametrize("runtime", ["keras", "litert"])
def test_the_demo_classifier_attributions_add_up_on_both_runtimes(runtime):
    entry = json.loads((DEMO / "manifest.json").read_text())["versions"][0]
    path = DEMO / (entry["tflite_url"] if runtime == "litert" else entry["url"])
    served = served_from(path, entry["schema"], entry["reference"], runtime)
    frame = pd.read_csv(DEMO / "sample.csv")
    done = understand.explain_table(served, InputTable(frame))
    found = done.attributions
    gap = found.prediction - found.reference
    np.testing.assert_allclose(found.values.sum(axis=1), gap, rtol=1e-3, atol=1e-6)
    assert set(found.target) <= {"setosa", "versicolor", "virginica"}
    assert [c for c in done.result.table.columns if c.startswith("attribution_")] == [f"attribution_{n}" for n in ROW]


def test_binary_and_regression_models_add_up(models):
    for name, output in (("binary.keras", {"type": "binary"}), ("regression.keras", {"type": "regression"})):
        schema = {"features": [{"name": "p", "default": 0.5}, {"name": "q", "default": -1.0}], "output": output}
        served = served_from(models["folder"] / name, schema)
        rows = pd.DataFrame({"p": [0.1, 2.0, -1.5], "q": [3.0, 0.0, 1.0]})
        found = understand.explain_table(served, InputTable(rows)).attributions
        np.testing.assert_allclose(found.values.sum(axis=1), found.prediction - found.reference, rtol=1e-4, atol=1e-6)


def test_a_category_input_and_many_features_sampled_still_add_up(tmp_path):
    import keras

    inputs = keras.Input((14,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8)(inputs)))
    model.save(tmp_path / "wide.keras")
    features = [{"name": "colour", "type": "category", "choices": ["red", "green", "blue"]}]
    features += [{"name": f"f{i}", "default": 0.0} for i in range(13)]
    served = served_from(tmp_path / "wide.keras", {"features": features, "output": {"type": "binary"}})
    rows = pd.DataFrame([{"colour": "blue", **{f"f{i}": float(i) / 3 for i in range(13)}}] * 2)
    found = understand.explain_table(served, InputTable(rows), exact_limit=64).attributions
    assert not found.exact and (found.errors > 0).any()
    np.testing.assert_allclose(found.values.sum(axis=1), found.prediction - found.reference, rtol=1e-4, atol=1e-6)


def test_what_if_matches_direct_predictions(tmp_path):
    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=str(DEMO / "manifest.json"))
    served = service.load_version(settings, service.catalog(settings).default)
    sweep = understand.what_if(served, ROW, "petal_length")
    assert len(sweep) >= 50 and list(sweep.columns)[0] == "petal_length"
    for i in (0, 25, len(sweep) - 1):
        direct = service.predict_row(served, {**ROW, "petal_length": float(sweep["petal_length"][i])}).table
        np.testing.assert_allclose(sweep["probability of virginica"][i], direct["probability_virginica"][0], rtol=1e-5)


def test_psi_against_a_hand_computed_example():
    expected, actual = np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.25, 0.25])
    hand = (0.5 - 0.25) * np.log(0.5 / 0.25) + 0 + (0.25 - 0.5) * np.log(0.25 / 0.5)
    assert drift.psi(expected, actual) == pytest.approx(hand) == pytest.approx(0.3466, abs=1e-4)
    assert [drift.verdict(v) for v in (0.05, 0.1, 0.24, 0.25)] == ["stable", "moderate", "moderate", "major"]


def test_drift_needs_a_reference_and_enough_rows(tmp_path):
    settings = settings_for(tmp_path, MODEL_MANIFEST_URL=str(DEMO / "manifest.json"))
    served = service.load_version(settings, service.catalog(settings).default)
    one = read_csv(b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n", 10**6, 10)
    assert understand.drift(served, one, service.predict_table(served, one)) == (
        "too few rows to compare with the training data (1; at least 30)"
    )
    same = read_csv(
        pd.DataFrame(np.repeat([[5.8, 3.0, 4.35, 1.3]], 60, axis=0), columns=list(ROW)).to_csv(index=False).encode(),
        10**7,
        1000,
    )
    found = understand.drift(served, same, service.predict_table(served, same))
    assert {d.feature for d in found} == set(ROW) and all(d.verdict == "major" for d in found)


def test_a_reference_whose_features_differ_is_refused_at_publish(tmp_path):
    from dashboard.service.publish import PublishOptions, publish

    wrong = tmp_path / "train.csv"
    wrong.write_text("sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(json.loads((DEMO / "manifest.json").read_text())["versions"][0]["schema"]))
    with pytest.raises(SchemaError) as caught:
        publish(
            DEMO / "iris-1.0.0.keras",
            "1.0.0",
            str(tmp_path / "store"),
            PublishOptions(schema_path=schema, reference=wrong),
        )
    assert str(caught.value) == (
        "train.csv: the reference lacks the schema's features petal_width; give the "
        "training data with one column per feature"
    )
    assert not (tmp_path / "store" / "manifest.json").exists()
    good = tmp_path / "good.csv"
    pd.read_csv(DEMO / "sample.csv").to_csv(good, index=False)
    publish(
        DEMO / "iris-1.0.0.keras", "1.0.0", str(tmp_path / "store"), PublishOptions(schema_path=schema, reference=good)
    )
    entry = json.loads((tmp_path / "store" / "manifest.json").read_text())["versions"][0]
    assert entry["reference"]["rows"] == 30 and len(json.dumps(entry["reference"])) < 8000


def test_the_page_shows_why_what_if_and_drift(env):
    at = AppTest.from_file(str(REPO / "dashboard" / "ui" / "page.py"), default_timeout=120).run()
    for name, value in ROW.items():
        at.number_input(key=f"single-{name}").set_value(value)
    at.button(key="single-submit").click().run()
    assert not at.exception
    assert [s.value for s in at.main.subheader][:2] == ["Why this prediction", "What if"]
    sentence = next(shown(m.value) for m in at.main.markdown if "raised" in m.value or "lowered" in m.value)
    assert sentence.startswith("**petal_width 2.3 raised virginica by") and "the training medians" in sentence
    at.file_uploader(key="batch-upload").upload("s.csv", (DEMO / "sample.csv").read_bytes(), "text/csv").run()
    tables = [d.value for d in at.main.dataframe if "verdict" in d.value.columns]
    assert len(tables) == 1 and tables[0]["input"].tolist() == list(ROW)
    assert set(tables[0]["verdict"]) <= {"stable", "moderate", "major"}
