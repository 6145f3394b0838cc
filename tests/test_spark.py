"""The Spark engine (issue 18) on a real local Spark (local[2], Java 17): the same output as the single-process CLI,
row for row, on a messy CSV and on Parquet, with both runtimes; the digest pinned for the whole job; faults that
fail once, early, with the CLI's message; the model loaded once per Python worker. One Spark session per module."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import history, service
from dashboard.cli import main as cli
from dashboard.errors import MissingColumnsError
from dashboard.prediction.results import rounded_probabilities
from tests.support.helpers import DEMO, REPO

pyspark = pytest.importorskip("pyspark") if not os.environ.get("REQUIRE_BROWSER") else __import__("pyspark")

MESSY = (
    "sepal_length,sepal_width,petal_length,petal_width,species\n"
    "5.1,3.5,1.4,0.2,setosa\n"
    " 6.7 ,3.0,5.2,2.3,virginica\n"
    'abc,3,1,1,"=HYPERLINK(""http://evil"")"\n'
    "5.0,3.0,1.0,,setosa\n"
    '4.9,3.1,1.5,0.1,"quoted, comma"\n'
    "7.9,3.8,6.4,2.0,\n"
    "-1,3.0,99,1.0,+cmd\n"
    "5.80,2.7,5.1,1.9,virginica\n"
    "1e400,2.7,5.1,1.9,huge\n"
)


@pytest.fixture(scope="module")
def spark():
    from dashboard import spark as engine

    session = engine.session("local[2]")
    yield session
    session.stop()


def cells(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Row for row, column for column: numbers equal as numbers (Spark writes 1.0E-5 where pandas writes 1e-05,
    and keeps a CSV cell's own text such as 5.80), text equal as text."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for column in a.columns:
        for i, (x, y) in enumerate(zip(a[column].tolist(), b[column].tolist(), strict=True)):
            x, y = str(x).strip(), str(y).strip()
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                assert x == y, (column, i, x, y)
                continue
            assert fx == fy or (math.isnan(fx) and math.isnan(fy)), (column, i, x, y)


def spark_csv(folder: Path) -> pd.DataFrame:
    parts = sorted(folder.glob("part-*.csv"))
    assert parts, f"no part files in {folder}"
    return pd.concat([cells(p.read_text()) for p in parts], ignore_index=True)


@pytest.mark.parametrize("runtime", ["keras", "litert"])
def test_the_cli_on_spark_writes_what_the_local_cli_writes_on_a_messy_csv(spark, env, tmp_path, capsys, runtime):
    env.setenv("MODEL_RUNTIME", runtime)
    source = tmp_path / "messy.csv"
    source.write_text(MESSY)
    assert cli.main(["predict", "--input", str(source), "--output", str(tmp_path / "local.csv")]) == 0
    local = cells((tmp_path / "local.csv").read_text())
    argv = ["predict", "--engine", "spark", "--master", "local[2]", "--input", str(source)]
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert (
        f"predicted 6 of 9 rows with version 1.1.0 (sha256 {service.catalog(service.settings()).default.digest[:12]})"
        in err
    )
    assert "3 of 9 rows have errors" in err
    on_spark = spark_csv(tmp_path / "out")
    same(local, on_spark)
    assert on_spark["species"][2] == '\'=HYPERLINK("http://evil")"'.rstrip('"') or on_spark["species"][2].startswith(
        "'="
    )
    assert on_spark["error"].tolist()[2:4] == ["sepal_length: 'abc' is not a number", "petal_width: missing value"]
    assert (on_spark["model_version"] == "1.1.0").all()
    # the run is in the history, by its counts
    runs = history.recorder(service.settings()).predictions(history.Filters(source="cli")).items
    assert [(r["rows"], r["errors"], r["file_name"]) for r in runs][0] == (9, 3, str(source))
    # the output folder is never replaced
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 1
    assert "already exists; choose a new output folder" in capsys.readouterr().err


def test_the_python_api_on_parquet_matches_the_local_cli(spark, env, tmp_path):
    from dashboard import spark as engine

    sample = pd.read_csv(DEMO / "sample.csv")
    sample.loc[3, "petal_width"] = np.nan
    sample.loc[4, "sepal_length"] = 99.0  # out of the usual range: predicted, as locally
    path = tmp_path / "flowers.parquet"
    sample.to_parquet(path)
    assert cli.main(["predict", "--input", str(path), "--output", str(tmp_path / "local.csv")]) == 0
    local = cells((tmp_path / "local.csv").read_text())
    result = engine.predict(spark.read.parquet(str(path)))
    assert result.columns == list(local.columns)
    frame = result.toPandas()
    assert frame["error"][3] == "petal_width: missing value" and pd.isna(frame["prediction"][3])
    # the DataFrame keeps full precision; the local CLI's CSV (a download) rounds probabilities to a millionth
    same(local, cells(rounded_probabilities(frame).to_csv(index=False)))
    out = tmp_path / "parquet-out"
    assert (
        cli.main(["predict", "--engine", "spark", "--input", str(path), "--output", str(out), "--format", "parquet"])
        == 0
    )
    written = pd.read_parquet(out)
    assert written["prediction"].tolist() == frame["prediction"].tolist()


def test_a_line_with_a_stray_separator_is_flagged_not_shifted(spark, env, tmp_path):
    from dashboard import spark as engine

    source = tmp_path / "ragged.csv"
    source.write_text(MESSY.splitlines()[0] + "\n5.9,3.0,4.2,1.5,versicolor,extra\n5.1,3.5,1.4,0.2,setosa\n")
    frame = engine.predict(engine.read(spark, str(source))).toPandas()
    assert frame["error"].tolist() == [engine.RAGGED, ""]
    assert pd.isna(frame["prediction"][0]) and frame["prediction"][1] == "setosa"


def test_the_version_is_pinned_for_the_whole_job(spark, env, tmp_path, copy_demo):
    """The driver resolves the version and its digest; re-publishing it while the job runs changes nothing."""
    from dashboard import spark as engine

    env.setenv("MODEL_MANIFEST_URL", str(copy_demo / "manifest.json"))
    settings = service.settings()
    features = pd.read_csv(DEMO / "sample.csv")[["sepal_length", "sepal_width", "petal_length", "petal_width"]]
    expected = service.predict_frame(service.load_version(settings, service.catalog(settings).get("1.1.0")), features)
    flowers = spark.read.option("header", True).csv(str(DEMO / "sample.csv"))
    job = engine.predict(flowers)  # resolved and pinned now; runs below
    manifest = json.loads((copy_demo / "manifest.json").read_text())
    v110 = next(v for v in manifest["versions"] if v["version"] == "1.1.0")
    v100 = next(v for v in manifest["versions"] if v["version"] == "1.0.0")
    pinned = v110["sha256"]
    v110.update(url=v100["url"], sha256=v100["sha256"])  # 1.1.0 now names the older model's file
    (copy_demo / "manifest.json").write_text(json.dumps(manifest))
    frame = job.toPandas()
    assert service.catalog(service.settings()).get("1.1.0").digest != pinned  # the store did change
    now = service.predict_frame(
        service.load_version(settings, service.catalog(service.settings()).get("1.1.0")), features
    )
    probabilities = [c for c in frame.columns if c.startswith("probability_")]
    assert set(frame["model_version"]) == {"1.1.0"} and len(frame) == 30
    # the pinned model's answers, not those of the file the manifest names now
    assert frame[probabilities].to_numpy(float).tolist() == expected.table[probabilities].to_numpy(float).tolist()
    assert not np.allclose(frame[probabilities].to_numpy(float), now.table[probabilities].to_numpy(float))


def test_an_unreachable_store_fails_once_early_with_the_clis_message(spark, env, tmp_path, capsys):
    env.setenv("MODEL_MANIFEST_URL", "http://127.0.0.1:9/models/manifest.json?X-Amz-Signature=SECRETSIG")
    env.setenv("MODEL_RETRIES", "0")
    source = tmp_path / "in.csv"
    shutil.copy(DEMO / "sample.csv", source)
    assert cli.main(["predict", "--input", str(source), "--output", str(tmp_path / "local.csv")]) == 1
    local = capsys.readouterr().err
    argv = ["predict", "--engine", "spark", "--input", str(source), "--output", str(tmp_path / "out")]
    assert cli.main(argv) == 1
    on_spark = capsys.readouterr().err
    assert local.strip().startswith("error: http://127.0.0.1:9/models/manifest.json is unreachable")
    assert on_spark.strip().splitlines()[-1] == local.strip().splitlines()[-1]
    assert "Traceback" not in on_spark and "at org.apache" not in on_spark and "SECRETSIG" not in on_spark
    assert not (tmp_path / "out").exists()


def test_a_wrong_sha256_fails_once_early_with_the_clis_message(spark, env, tmp_path, capsys, copy_demo):
    manifest = json.loads((copy_demo / "manifest.json").read_text())
    manifest["versions"][0]["sha256"] = "0" * 64
    (copy_demo / "manifest.json").write_text(json.dumps(manifest))
    env.setenv("MODEL_MANIFEST_URL", str(copy_demo / "manifest.json"))
    env.setenv("MODEL_VERSION", manifest["versions"][0]["version"])
    source = tmp_path / "in.csv"
    shutil.copy(DEMO / "sample.csv", source)
    assert cli.main(["predict", "--input", str(source), "--output", str(tmp_path / "local.csv")]) == 1
    local = capsys.readouterr().err.strip().splitlines()[-1]
    assert cli.main(["predict", "--engine", "spark", "--input", str(source), "--output", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == local
    assert "sha256" in local


def test_missing_input_columns_are_named_before_any_task_runs(spark, env):
    from dashboard import spark as engine

    counters = engine.counters_for(spark)
    before = counters.rows.value
    df = spark.createDataFrame(pd.DataFrame({"sepal_length": ["5.1"], "petal_length": ["1.4"]}))
    with pytest.raises(MissingColumnsError) as caught:
        engine.predict(df)
    assert caught.value.message == (
        "columns 'sepal_width', 'petal_width' are missing from the input; expected columns: "
        "sepal_length, sepal_width, petal_length, petal_width"
    )
    assert counters.rows.value == before


def test_the_model_is_loaded_once_per_python_worker(spark, env):
    """8 partitions on local[2]: each of the (at most 2) Python workers loads version 1.0.0 once and reuses it."""
    from dashboard import spark as engine

    counters = engine.counters_for(spark)
    loads, rows = counters.loads.value, counters.rows.value
    flowers = spark.read.option("header", True).csv(str(DEMO / "sample.csv"))
    many = flowers.unionByName(flowers).unionByName(flowers).unionByName(flowers).repartition(8)
    assert many.rdd.getNumPartitions() == 8
    frame = engine.predict(many, version="1.0.0").toPandas()
    assert len(frame) == 120 and set(frame["model_version"]) == {"1.0.0"}
    assert counters.rows.value - rows == 120
    assert 1 <= counters.loads.value - loads <= 2


def test_spark_submit_runs_the_job_as_the_readme_shows(env, tmp_path):
    """`spark-submit bin/spark-predict.py ...` in its own JVM, as on a cluster (here local[2])."""
    import subprocess
    import sys

    submit = Path(sys.executable).parent / "spark-submit"
    if not submit.exists():
        submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    out = tmp_path / "scores"
    done = subprocess.run(
        [
            str(submit),
            "--master",
            "local[2]",
            "bin/spark-predict.py",
            "--input",
            str(DEMO / "sample.csv"),
            "--output",
            str(out),
            "--version",
            "stable",
            "--format",
            "parquet",
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    said = done.stdout + done.stderr  # spark-submit passes the Python driver's stderr on through its stdout
    assert done.returncode == 0, said[-3000:]
    assert "predicted 30 of 30 rows with version 1.0.0" in said
    frame = pd.read_parquet(out)
    assert len(frame) == 30 and set(frame["model_version"]) == {"1.0.0"}
    assert (frame["prediction"] == frame["species"]).mean() >= 0.9


def test_spark_echoes_every_input_column_as_written(spark, env, tmp_path):
    """Issue 22: 007 stays 007, a zip code keeps its leading zero, 5.10 stays 5.10, as in the local CLI."""
    source = tmp_path / "ids.csv"
    source.write_text(
        "id,sepal_length,sepal_width,petal_length,petal_width,zip\n007,5.10,3.5,1.4,0.2,02134\n008,6.70,3.0,5.2,2.3,00501\n"
    )
    argv = ["predict", "--engine", "spark", "--master", "local[2]", "--input", str(source)]
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 0
    on_spark = spark_csv(tmp_path / "out")
    assert on_spark["id"].tolist() == ["007", "008"]
    assert on_spark["zip"].tolist() == ["02134", "00501"]
    assert on_spark["sepal_length"].tolist() == ["5.10", "6.70"]
    assert on_spark["prediction"].tolist() == ["setosa", "virginica"]


def test_hostile_spark_inputs_are_refused_or_flagged_per_row(spark, env, tmp_path):
    """Issue 23: a column cap as the CLI's; a byte that is not UTF-8 in a Parquet text column is that row's error
    (it failed the whole job); local workers run this interpreter; no code folder left behind."""
    import glob
    import subprocess
    import sys
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dashboard import spark as engine
    from dashboard.errors import InputError

    wide = spark.createDataFrame([tuple(range(1200))], [f"c{i}" for i in range(1200)])
    with pytest.raises(InputError, match="the input has 1,200 columns, over the 1,000 limit"):
        engine.predict(wide)
    table = pa.table(
        {
            "sepal_length": pa.array([5.1, 6.7]),
            "sepal_width": pa.array([3.5, 3.0]),
            "petal_length": pa.array([1.4, 5.2]),
            "petal_width": pa.array([0.2, 2.3]),
            "note": pa.array([b"caf\xe9 latin-1", b"fine"], type=pa.binary()).cast(pa.string(), safe=False),
        }
    )
    path = tmp_path / "bytes.parquet"
    pq.write_table(table, path)
    out = tmp_path / "out"
    assert cli.main(["predict", "--engine", "spark", "--input", str(path), "--output", str(out)]) == 0
    on_spark = spark_csv(out)
    assert on_spark["error"][0] == "note: the text is not valid UTF-8; save the data as UTF-8"
    assert on_spark["prediction"].tolist() == ["", "virginica"] and on_spark["note"][1] == "fine"
    assert os.environ["PYSPARK_PYTHON"] == sys.executable
    before = set(glob.glob(str(Path(tempfile.gettempdir()) / "dashboard-code-*")))
    source = tmp_path / "ok.csv"
    source.write_text(MESSY)
    script = (
        "import sys; from dashboard.__main__ import main; "
        f"sys.exit(main(['predict', '--engine', 'spark', '--master', 'local[1]', '--input', {str(source)!r}, "
        f"'--output', {str(tmp_path / 'again')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(glob.glob(str(Path(tempfile.gettempdir()) / "dashboard-code-*"))) <= before


def test_a_python_worker_failure_says_what_failed():
    from dashboard.spark.command import _spark_message

    text = (
        "An exception was thrown from the Python worker. Please see the stack trace below.\n"
        'Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position 3: invalid continuation byte\n"
        "\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException(PythonRunner.scala:1)\n"
    )
    assert _spark_message(RuntimeError(text)) == (
        "An exception was thrown from the Python worker. Please see the stack trace below. UnicodeDecodeError: "
        "'utf-8' codec can't decode byte 0xe9 in position 3: invalid continuation byte"
    )


def test_a_folder_of_images_on_spark_gives_the_local_clis_rows(spark, env, tmp_path, capsys):
    """Issue 26: Spark reads a folder with binaryFile; every file is a row named by its path in the folder, bad
    files are row errors, and the rows equal the local CLI's on the same folder."""
    digits = DEMO / "digits"
    env.setenv("MODEL_MANIFEST_URL", str(digits / "manifest.json"))
    env.setenv("HISTORY", "off")
    folder = tmp_path / "shots"
    shutil.copytree(digits / "samples", folder / "nested")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / ".hidden.png").write_bytes((digits / "samples" / "digit-1.png").read_bytes())
    assert cli.main(["predict", "--input", str(folder), "--output", str(tmp_path / "local.csv")]) == 0
    local = cells((tmp_path / "local.csv").read_text())
    argv = ["predict", "--engine", "spark", "--master", "local[2]", "--input", str(folder)]
    assert cli.main([*argv, "--output", str(tmp_path / "out")]) == 0
    assert "1 of 11 rows have errors" in capsys.readouterr().err
    on_spark = spark_csv(tmp_path / "out").sort_values("file", ignore_index=True)
    assert list(on_spark["file"]) == ["broken.png", *[f"nested/digit-{d}.png" for d in range(10)]]
    same(local.sort_values("file", ignore_index=True), on_spark)
    assert "broken.png: not an image Pillow can read" in on_spark["error"][0]


def test_spark_predicts_a_model_of_the_catalog_by_name(spark, env, tmp_path, catalog_store, capsys):
    from tests.support.catalog import HOUSES, expected_prices

    env.setenv("MODEL_CATALOG_URL", str(catalog_store["catalog"]))
    source = tmp_path / "houses.csv"
    pd.DataFrame(HOUSES).to_csv(source, index=False)
    argv = ["predict", "--engine", "spark", "--master", "local[2]", "--model", "house", "--input", str(source)]
    assert cli.main([*argv, "--version", "1.0.0", "--output", str(tmp_path / "out")]) == 0
    on_spark = spark_csv(tmp_path / "out")
    np.testing.assert_allclose(on_spark["prediction"].astype(float), expected_prices(catalog_store, "1.0.0"), rtol=1e-5)
    assert (on_spark["model_version"] == "1.0.0").all()
    runs = history.recorder(service.settings()).predictions(history.Filters(model="house", source="cli")).items
    assert [(r["model"], r["version"], r["rows"]) for r in runs] == [("house", "1.0.0", 3)]
    from dashboard import spark as engine  # the Python API takes the name too

    frame = engine.predict(spark.createDataFrame(pd.DataFrame(HOUSES)), model="house").toPandas()
    np.testing.assert_allclose(frame["prediction"], expected_prices(catalog_store, "2.0.0"), rtol=1e-5)
    assert cli.main([*argv, "--model", "housing", "--output", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err.strip().endswith("there is no model housing; models: iris, house, digits")
