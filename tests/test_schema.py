from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.errors import InputError, SchemaError
from dashboard.loading import keras_model
from dashboard.prediction.reading.csv_files import read_csv
from dashboard.prediction.schema import Feature, check_against_model, infer_schema, parse_schema
from dashboard.prediction.validate import RangeWarning, validate

IRIS = {
    "features": [
        {"name": "sepal_length", "type": "number", "min": 4.0, "max": 8.0, "default": 5.8, "unit": "cm"},
        {"name": "sepal_width", "type": "number"},
        {"name": "island", "type": "category", "choices": ["Biscoe", "Dream", "Torgersen"]},
    ],
    "output": {"type": "classification", "labels": ["setosa", "versicolor", "virginica"]},
}
LIMITS = dict(max_bytes=1_000_000, max_rows=1000)


def test_parse_spec_schema():
    schema = parse_schema(IRIS)
    assert schema.names == ["sepal_length", "sepal_width", "island"]
    assert schema.features[0] == Feature("sepal_length", "number", 4.0, 8.0, 5.8, "cm")
    assert schema.features[2].choices == ("Biscoe", "Dream", "Torgersen")
    assert schema.output.labels == ("setosa", "versicolor", "virginica")
    assert parse_schema(schema.to_dict()) == schema
    assert schema.template_csv().decode() == "sepal_length,sepal_width,island\n5.8,0.0,Biscoe\n"


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"output": {"type": "regression"}},
            'schema: "features" must be a non-empty list of {"name": ..., "type": ...}',
        ),
        (
            {"features": [{"type": "number"}], "output": {"type": "regression"}},
            'schema, features[0] needs a "name" (the CSV column name)',
        ),
        (
            {"features": [{"name": "a", "type": "float"}], "output": {"type": "regression"}},
            "schema, features[0] (a): type 'float' is not one of number, category, text, image",
        ),
        (
            {"features": [{"name": "a", "min": 5, "max": 1}], "output": {"type": "regression"}},
            "schema, features[0] (a): min 5 is above max 1",
        ),
        (
            {"features": [{"name": "a", "type": "category"}], "output": {"type": "regression"}},
            'schema, features[0] (a): a category needs a non-empty "choices" list',
        ),
        (
            {"features": [{"name": "a"}, {"name": "a"}], "output": {"type": "regression"}},
            "schema: feature 'a' is listed twice",
        ),
        (
            {"features": [{"name": "a"}], "output": {"type": "classification", "labels": ["x"]}},
            'schema, output: a classification needs "labels", one per class (at least 2)',
        ),
        (
            {"features": [{"name": "a"}], "output": {"type": "binary", "threshold": 2}},
            'schema, output: "threshold" must be a number between 0 and 1',
        ),
        (
            {"features": [{"name": "a"}], "output": {"type": "ranking"}},
            "schema, output: type 'ranking' is not one of classification, binary, regression",
        ),
    ],
)
def test_bad_schemas_say_what_is_wrong(data, message):
    with pytest.raises(SchemaError) as caught:
        parse_schema(data)
    assert str(caught.value) == message


def test_infer_from_each_kind_of_model(models):
    folder = models["folder"]
    classifier = infer_schema(keras_model.load("file", {"model": folder / "classifier.keras"}))
    assert classifier.names == ["x0", "x1", "x2"]
    assert (classifier.output.type, classifier.output.labels) == ("classification", ("0", "1", "2", "3"))
    binary = infer_schema(keras_model.load("file", {"model": folder / "binary.keras"}))
    assert (binary.names, binary.output.type) == (["x0", "x1"], "binary")
    regression = infer_schema(keras_model.load("file", {"model": folder / "regression.keras"}))
    assert regression.output.type == "regression"
    named = infer_schema(keras_model.load("file", {"model": folder / "named.keras"}))
    assert {f.name: f.type for f in named.features} == {"colour": "text", "size": "number"}


def test_schema_that_disagrees_with_the_model(models):
    model = keras_model.load("file", {"model": models["folder"] / "classifier.keras"})
    with pytest.raises(SchemaError) as caught:
        check_against_model(parse_schema(IRIS), model)
    assert str(caught.value) == (
        "the schema lists 3 labels but the model gives 4 class scores; list one label per class, in the model's order"
    )
    two = {"features": [{"name": "a"}, {"name": "b"}], "output": {"type": "regression"}}
    with pytest.raises(SchemaError, match="the schema lists 2 features but the model takes 3 per row"):
        check_against_model(parse_schema(two), model)
    named = keras_model.load("file", {"model": models["folder"] / "named.keras"})
    wrong = {"features": [{"name": "size"}, {"name": "color", "type": "text"}], "output": {"type": "binary"}}
    with pytest.raises(SchemaError) as caught:
        check_against_model(parse_schema(wrong), named)
    assert str(caught.value) == (
        "the schema disagrees with the model: the model's inputs are colour, size; "
        "missing from the schema: colour; not model inputs: color; "
        "fix the schema's feature names"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbfsepal_length,sepal_width,island\n5.1,3.5,Dream\n",  # UTF-8 BOM
        b"sepal_length;sepal_width;island\n5,1;3,5;Dream\n",  # semicolons and decimal commas
        b"sepal_length\tsepal_width\tisland\n5.1\t3.5\tDream\n",  # tabs
        b"sepal_length, sepal_width, island\r\n5.1, 3.5, Dream\r\n",  # spaces and CRLF
    ],
)
def test_messy_but_valid_csvs_read_the_same(data):
    table = read_csv(data, **LIMITS)
    result = validate(table, parse_schema(IRIS))
    assert list(table.frame.columns) == ["sepal_length", "sepal_width", "island"]
    np.testing.assert_allclose(result.inputs, [[5.1, 3.5, 1.0]], rtol=1e-6)
    assert result.errors.tolist() == [""]


def test_latin1_text_is_read():
    frame = read_csv("name,sepal_length\nCafé,5.1\n".encode("latin-1"), **LIMITS).frame
    assert frame["name"].tolist() == ["Café"]


@pytest.mark.parametrize(
    "data, message",
    [
        (
            b"",
            "the file is empty; upload a CSV with a header row and one row per prediction",
        ),
        (
            b"   \n\n",
            "the file is empty; upload a CSV with a header row and one row per prediction",
        ),
        (
            b"sepal_length,sepal_width,island\n",
            "the file has a header but no rows; add one row per prediction below the header",
        ),
        (
            b"PK\x03\x04\x14\x00binary",
            "the file is not a text CSV (it looks binary); export your table as CSV "
            "(comma, semicolon or tab separated) and upload that",
        ),
    ],
)
def test_unusable_files_are_refused_with_what_to_do(data, message):
    with pytest.raises(InputError) as caught:
        read_csv(data, **LIMITS)
    assert str(caught.value) == message


def test_a_line_with_too_many_fields_flags_only_its_row():
    table = read_csv(b"sepal_length;sepal_width;island\n5,1;3,5;Dream\n5;3;Dream;extra\n4,9;3;Biscoe\n6\n", **LIMITS)
    result = validate(table, parse_schema(IRIS))
    assert result.errors.tolist() == [
        "",
        "line 3 has 4 fields but the header has 3; a stray separator, or a text value with a separator that "
        "needs quotes",
        "",
        "sepal_width: missing value; island: missing value",
    ]
    np.testing.assert_allclose(result.inputs, [[5.1, 3.5, 1.0], [4.9, 3.0, 0.0]], rtol=1e-6)


def test_size_and_row_caps():
    with pytest.raises(InputError, match=r"^the file is 1.9 MiB, over the 976.6 KiB limit; split it"):
        read_csv(b"a\n" + b"1\n" * 1_000_000, **LIMITS)
    with pytest.raises(InputError, match=r"^the file has more than 1,000 rows, over the limit"):
        read_csv(b"a\n" + b"1\n" * 1001, **LIMITS)


def test_a_missing_column_refuses_the_table_and_names_the_expected_ones():
    frame = read_csv(b"sepal_length,island\n5.1,Dream\n", **LIMITS).frame
    with pytest.raises(InputError) as caught:
        validate(frame, parse_schema(IRIS))
    assert str(caught.value) == ("column 'sepal_width' is missing; expected columns: sepal_length, sepal_width, island")


def test_bad_cells_flag_only_their_row_with_exact_messages():
    data = (
        b"sepal_length,sepal_width,island,comment\n"
        b"5.1,3.5,Dream,ok\n"
        b"abc,3.5,Dream,text in a number\n"
        b",3.5,Dream,empty\n"
        b"inf,3.5,Dream,infinite\n"
        b"5.1,3.5,Atlantis,unknown category\n"
        b"5.1,nan,,two problems\n"
        b"12.5,3.5,Biscoe,out of range\n"
    )
    result = validate(read_csv(data, **LIMITS), parse_schema(IRIS))
    assert result.errors.tolist() == [
        "",
        "sepal_length: 'abc' is not a number",
        "sepal_length: missing value",
        "sepal_length: 'inf' is not a finite number",
        "island: 'Atlantis' is not one of Biscoe, Dream, Torgersen",
        "sepal_width: missing value; island: missing value",
        "",
    ]
    assert result.good.tolist() == [True, False, False, False, False, False, True]
    assert result.ready == 2
    assert result.extra_columns == ("comment",)
    assert result.warnings == (RangeWarning(row=6, feature="sepal_length", value=12.5, bound="max", limit=8.0),)
    np.testing.assert_allclose(result.inputs, [[5.1, 3.5, 1.0], [12.5, 3.5, 0.0]], rtol=1e-6)


def test_numeric_columns_with_nan_and_inf_from_the_parser():
    frame = pd.DataFrame(
        {"sepal_length": [1.0, np.nan, np.inf, -np.inf], "sepal_width": [1, 2, 3, 4], "island": ["Dream"] * 4}
    )
    result = validate(frame, parse_schema(IRIS))
    assert result.errors.tolist() == [
        "",
        "sepal_length: missing value",
        "sepal_length: inf is not a finite number",
        "sepal_length: -inf is not a finite number",
    ]


def test_named_string_inputs_keep_their_text():
    schema = parse_schema(
        {"features": [{"name": "size"}, {"name": "colour", "type": "text"}], "output": {"type": "binary"}}
    )
    frame = read_csv(b"size,colour\n1,red\n2,\n", **LIMITS).frame
    result = validate(frame, schema, named_inputs=True, string_inputs=frozenset({"colour"}))
    assert result.errors.tolist() == ["", "colour: missing value"]
    assert result.inputs["colour"].tolist() == ["red"]
    assert result.inputs["size"].tolist() == [1.0]
