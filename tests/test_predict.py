from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from packaging.version import Version

from dashboard import service
from dashboard.common.csv_export import safe_csv
from dashboard.loading import keras_model
from dashboard.prediction import scoring
from dashboard.prediction.reading.csv_files import read_csv
from dashboard.prediction.schema import infer_schema, parse_schema
from dashboard.service import Served
from dashboard.store.versions import ModelVersion
from tests.support.helpers import at_once

LIMITS = dict(max_bytes=10_000_000, max_rows=200_000)


def served(models, name: str, schema: dict | None = None, label: str = "1.0.0") -> Served:
    model = keras_model.load("file", {"model": models["folder"] / name})
    return Served(
        version=ModelVersion(version=Version(label), kind="file", origin="test"),
        model=model,
        schema=parse_schema(schema) if schema else infer_schema(model),
        schema_source="test",
    )


def test_classification_output_columns_and_order(models):
    schema = {
        "features": [{"name": n} for n in ("a", "b", "c")],
        "output": {"type": "classification", "labels": ["w", "x", "y", "z"]},
    }
    model = served(models, "classifier.keras", schema)
    table = read_csv(b"id,a,b,c\n1,0.1,0.2,0.3\n2,oops,0.2,0.3\n3,1,2,3\n", **LIMITS)
    result = service.predict_table(model, table)
    table = result.table
    assert list(table.columns) == [
        "id",
        "a",
        "b",
        "c",
        "prediction",
        "probability_w",
        "probability_x",
        "probability_y",
        "probability_z",
        "model_version",
        "error",
    ]
    assert table["id"].tolist() == ["1", "2", "3"]  # echoed as written, never parsed (issue 22)
    assert table["error"].tolist() == ["", "a: 'oops' is not a number", ""]
    expected = np.asarray(models["classifier"](np.array([[0.1, 0.2, 0.3], [1, 2, 3]], dtype="float32")))
    probabilities = table.loc[[0, 2], ["probability_w", "probability_x", "probability_y", "probability_z"]]
    np.testing.assert_allclose(probabilities.to_numpy(), expected, rtol=1e-5)
    assert table["prediction"].tolist()[::2] == [
        ["w", "x", "y", "z"][np.argmax(expected[0])],
        ["w", "x", "y", "z"][np.argmax(expected[1])],
    ]
    assert table["prediction"].isna().tolist() == [False, True, False]
    assert table.loc[1, ["probability_w", "probability_z"]].isna().all()
    assert table["model_version"].tolist() == ["1.0.0"] * 3
    assert (result.rows, result.predicted, result.failed) == (3, 2, 1)
    assert result.first_errors == ["row 2 (line 3): a: 'oops' is not a number"]


def test_binary_uses_the_threshold_and_labels(models):
    schema = {
        "features": [{"name": "x0"}, {"name": "x1"}],
        "output": {"type": "binary", "labels": ["no", "yes"], "threshold": 0.5},
    }
    model = served(models, "binary.keras", schema)
    x = np.random.default_rng(3).normal(size=(50, 2)) * 5
    result = service.predict_frame(model, pd.DataFrame(x, columns=["x0", "x1"]))
    p = np.asarray(models["binary"](x.astype("float32")))[:, 0]
    assert list(result.table.columns) == ["x0", "x1", "prediction", "probability", "model_version", "error"]
    np.testing.assert_allclose(result.table["probability"], p, rtol=1e-5)
    assert result.table["prediction"].tolist() == ["yes" if v >= 0.5 else "no" for v in p]


def test_regression_gives_the_value(models):
    model = served(models, "regression.keras")
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    result = service.predict_frame(model, pd.DataFrame(x, columns=["x0", "x1"]))
    assert list(result.table.columns) == ["x0", "x1", "prediction", "model_version", "error"]
    np.testing.assert_allclose(result.table["prediction"], np.asarray(models["regression"](x))[:, 0], rtol=1e-5)


def test_named_inputs_with_text(models):
    model = served(models, "named.keras")
    read = read_csv(b"colour,size\nred,1\ngreen,2\n,3\n", **LIMITS)
    table = service.predict_table(model, read).table
    assert table["error"].tolist() == ["", "", "colour: missing value"]
    assert table["probability"].notna().tolist() == [True, True, False]


def test_chunks_give_the_same_answer_as_one_call_and_report_progress(models):
    model = served(models, "classifier.keras")
    x = np.random.default_rng(1).normal(size=(1000, 3)).astype("float32")
    seen = []
    chunked = scoring.scores(model.model, x, 1000, lambda done, total: seen.append((done, total)), chunk_rows=300)
    np.testing.assert_allclose(chunked, model.model.call(x), rtol=1e-6)
    assert seen == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]


def test_many_threads_give_the_same_results_as_one(models):
    model = served(models, "classifier.keras")
    frames = [
        pd.DataFrame(np.random.default_rng(i).normal(size=(200, 3)), columns=["x0", "x1", "x2"]) for i in range(20)
    ]
    serial = [service.predict_frame(model, f).table for f in frames]

    def work(i):
        return [service.predict_frame(model, frames[i]).table for _ in range(5)][-1]

    for got, expected in zip(at_once(20, work), serial):
        pd.testing.assert_frame_equal(got, expected)


def test_predict_row_is_the_forms_path(models):
    model = served(models, "regression.keras")
    result = service.predict_row(model, {"x0": 1.0, "x1": "2"})
    assert result.table["error"].tolist() == [""]
    assert result.table["prediction"].iloc[0] == pytest.approx(
        float(
            np.asarray(
                models["regression"](
                    np.array(
                        [
                            [1.0, 2.0],
                        ],
                        dtype="float32",
                    )
                )
            )[0, 0]
        ),
        rel=1e-5,
    )


def test_safe_csv_neutralises_formulas_but_not_numbers():
    table = pd.DataFrame(
        {
            "text": ['=HYPERLINK("http://x")', "+1+2", "-2", "@SUM(A1)", "\tcmd", "\rcmd", "plain", "-1.5e3"],
            "number": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    out = pd.read_csv(io.BytesIO(safe_csv(table)), keep_default_na=False)
    assert out["text"].tolist() == [
        '\'=HYPERLINK("http://x")',
        "'+1+2",
        "-2",
        "'@SUM(A1)",
        "'\tcmd",
        "'\rcmd",
        "plain",
        "-1.5e3",
    ]
    assert out["number"].tolist() == [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_safe_csv_also_covers_header_and_error_text():
    table = pd.DataFrame({"=evil": ["x"], "error": ["=cmd: missing value"]})
    text = safe_csv(table).decode()
    assert text.splitlines() == ["'=evil,error", "x,'=cmd: missing value"]


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        (
            "classifier.keras",
            {
                "features": [{"name": n, "min": 0, "max": 1} for n in "abc"],  # range warnings on most rows
                "output": {"type": "classification", "labels": ["w", "x", "y", "z"]},
            },
        ),
        ("binary.keras", None),
        ("regression.keras", None),
    ],
)
def test_json_rows_as_one_matrix_answer_exactly_as_the_table_path(models, name, schema):
    """Issue 25: the API's all-number rows skip the DataFrame (validate_matrix); every answer, error message, range
    warning and output cell is the table path's, on rows with NaN, infinities, values past float32, ints."""
    from dashboard.api.answers import answer, raw_outputs
    from dashboard.prediction.reading.json_rows import frame_of
    from dashboard.service.batching import Part

    model = served(models, name, schema)
    names = model.schema.names
    rng = np.random.default_rng(7)
    odd = [float("nan"), float("inf"), -float("inf"), 1e39, 7, -3, 0]
    for _ in range(60):
        rows = [
            {n: float(rng.uniform(-2, 3)) if rng.random() < 0.85 else odd[rng.integers(len(odd))] for n in names}
            for _ in range(rng.integers(0, 30))
        ]
        fast = service.predict_rows(model, rows)
        table = service.predict_frame(model, frame_of(rows, names), None, None)
        assert fast.validated is not None and fast.validated.inputs.dtype == np.float32
        fast_part, table_part = Part(fast, 0, len(rows)), Part(table, 0, len(rows))
        assert answer(model, fast_part) == answer(model, table_part)
        assert raw_outputs(model, fast_part) == raw_outputs(model, table_part)
        assert fast.table.equals(table.table)
    assert (
        service.predict_rows(model, [{**{n: 1.0 for n in names}, names[0]: "1.5"}]).predicted == 1
    )  # text: careful path
