"""monitor: hourly counts the Monitor tab and /api/v1/monitor read, kept up to date as predictions are written

Revision ID: 0004
Revises: 0003

One row per (hour, model, version, door, metric, feature, key) with a count and a total: calls and their
milliseconds, rows, refused rows, latency buckets, answers per class (or the regression's value buckets), and
per input feature the reference bin (or choice) each recorded value fell in. The writer adds to them in the
transaction that inserts the predictions, so a week of a million predictions is read as a few thousand rows.
feedback.answer: the answer a report corrects (its "most corrected" classes).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_counts",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("feature", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "hour", "source", "metric", "feature", "key"),
    )
    op.create_index("ix_monitor_counts_hour", "monitor_counts", ["hour"])
    op.add_column("feedback", sa.Column("answer", sa.Text))


def downgrade() -> None:
    op.drop_column("feedback", "answer")
    op.drop_index("ix_monitor_counts_hour", "monitor_counts")
    op.drop_table("monitor_counts")
