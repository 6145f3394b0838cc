"""The same predictions as an Apache Spark job (pyspark; `requirements-spark.txt`): `spark.predict(df)` for
notebooks, `python -m dashboard predict --engine spark` on the command line.

driver.py decides everything once on the driver (version, pinned files, schema, columns) and fails there with the
CLI's message; worker.py runs on the executors; command.py is the command line's job (read, predict, write).
"""

from dashboard.prediction.reading.spark_batches import RAGGED
from dashboard.spark.command import input_format, read, run, session
from dashboard.spark.driver import counters_for, predict, prepare
from dashboard.spark.worker import predict_batch

__all__ = ["RAGGED", "counters_for", "input_format", "predict", "predict_batch", "prepare", "read", "run", "session"]
