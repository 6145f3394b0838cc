"""The process's Prometheus metrics (prometheus-client), named in one place, and their exposition for GET /metrics.

Multi-process safe: when PROMETHEUS_MULTIPROC_DIR names a folder (set before the first import, as
prometheus-client's multi-process mode asks), every process writes its values to files there and /metrics sums
them (gauges: the live processes' sum); otherwise the values live in this process.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "keras_dashboard"
REGISTRY = CollectorRegistry()
# seconds: 1 ms steps up to 10 ms (where a small model's answers sit), then coarser up to a minute
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01,
    0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 16384, 65536)
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    f"{PREFIX}_requests",
    "HTTP requests answered, by route family (door), model, version and status code.",
    ["door", "model", "version", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    f"{PREFIX}_request_seconds",
    "Seconds from a request's arrival to its answer's last byte, by door and model.",
    ["door", "model"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ROWS_PREDICTED = Counter(
    f"{PREFIX}_rows_predicted",
    "Rows predicted, by model and version (every door: page, API, command line).",
    ["model", "version"],
    registry=REGISTRY,
)
ROWS_REFUSED = Counter(
    f"{PREFIX}_rows_refused",
    "Rows that could not be predicted, by model, version and reason.",
    ["model", "version", "reason"],
    registry=REGISTRY,
)
MODEL_LOADS = Counter(
    f"{PREFIX}_model_loads",
    "Version loads, by model, version and outcome (loaded, failed).",
    ["model", "version", "outcome"],
    registry=REGISTRY,
)
MODEL_LOAD_SECONDS = Histogram(
    f"{PREFIX}_model_load_seconds",
    "Seconds one version took to fetch, check and load, by model.",
    ["model"],
    buckets=LOAD_BUCKETS,
    registry=REGISTRY,
)
MODELS_LOADED = Gauge(
    f"{PREFIX}_models_loaded",
    "Versions in memory.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
MODEL_BYTES = Gauge(
    f"{PREFIX}_model_bytes",
    "Bytes a version in memory is counted for (0 once released), by model and version.",
    ["model", "version"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
BATCH_ROWS = Histogram(
    f"{PREFIX}_batch_rows",
    "Rows per model call of the API's micro-batcher (requests coalesced into one call).",
    buckets=BATCH_BUCKETS,
    registry=REGISTRY,
)
HISTORY_QUEUE = Gauge(
    f"{PREFIX}_history_queue_depth",
    "Predictions waiting to be written to the history.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
HISTORY_WRITTEN = Counter(f"{PREFIX}_history_written", "Predictions written to the history.", registry=REGISTRY)
HISTORY_DROPPED = Counter(
    f"{PREFIX}_history_dropped",
    "Predictions the history could not keep (past its queue and spool, or refused by the database).",
    registry=REGISTRY,
)
HISTORY_WRITE_SECONDS = Histogram(
    f"{PREFIX}_history_write_seconds",
    "Seconds one batch of predictions took to write (one transaction).",
    buckets=WRITE_BUCKETS,
    registry=REGISTRY,
)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition() -> tuple[bytes, str]:
    """(the metrics in Prometheus's text format, its content type): every process's sum in multi-process mode."""
    if multiprocess():
        from prometheus_client import multiprocess as shared

        registry = CollectorRegistry()
        shared.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
