"""The history database's tables (SQLAlchemy Core): one row per prediction (form, batch, API call, CLI run) and one
per "wrong answer" report. The Alembic revisions in migrations/ create them; this is their current shape."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # time-ordered hex id, made when the prediction is answered
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user", sa.String(320), nullable=False, index=True),  # email, token name, OS user (CLI), anonymous
    sa.Column("source", sa.String(16), nullable=False),  # form, batch, api, cli (4 values: not worth an index)
    sa.Column("model", sa.String(64), index=True),  # the model's name; NULL for rows from before names (0003)
    sa.Column("version", sa.String(64), nullable=False, index=True),
    sa.Column("sha256", sa.String(64)),  # None when the version is not pinned
    sa.Column("runtime", sa.String(16), nullable=False),
    sa.Column("output_type", sa.String(16), nullable=False),
    sa.Column("labels", sa.JSON),  # the schema's labels (classification, binary)
    sa.Column("features", sa.JSON, nullable=False),  # the schema's feature names, in order
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("file_name", sa.String(255)),  # batch and CLI
    sa.Column("file_sha256", sa.String(64)),
    sa.Column("inputs", sa.JSON),  # the rows as {feature: value}, for a form, a small API call or a small file
    sa.Column("outputs", sa.JSON),  # per row: prediction, probabilities, error
    sa.Column("summary", sa.JSON),  # counts per label, or value statistics (regression)
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prediction_id", sa.String(32), sa.ForeignKey("predictions.id"), nullable=False, index=True),
    sa.Column("row", sa.Integer, nullable=False),  # which row of the prediction (0 for a form)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user", sa.String(320), nullable=False, index=True),
    sa.Column("label", sa.Text),  # the right label (classification, binary)
    sa.Column("value", sa.Float),  # the right value (regression)
    sa.Column("comment", sa.Text),
    sa.Column("answer", sa.Text),  # the answer it corrects (label or value, as text); NULL before 0004
)

# hourly counts behind the Monitor tab (history/monitoring.py), added to as predictions are written
monitor_counts = sa.Table(
    "monitor_counts",
    metadata,
    sa.Column("hour", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model", sa.String(64), nullable=False),  # "" for a dashboard's only, unnamed model
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # the door: form, batch, api, cli, mcp
    sa.Column("metric", sa.String(16), nullable=False),  # monitoring.Metric
    sa.Column("feature", sa.String(255), nullable=False),  # an input feature (metric "bin"/"outside"), else ""
    sa.Column("key", sa.String(255), nullable=False),  # a latency bucket, a class, a bin or a choice, else ""
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("total", sa.Float, nullable=False),  # a sum beside the count (the calls' milliseconds)
    sa.PrimaryKeyConstraint("model", "version", "hour", "source", "metric", "feature", "key"),
)
