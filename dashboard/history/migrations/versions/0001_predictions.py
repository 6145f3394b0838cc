"""predictions: one row per form, batch, API or CLI prediction

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(320), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("output_type", sa.String(16), nullable=False),
        sa.Column("labels", sa.JSON),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("file_name", sa.String(255)),
        sa.Column("file_sha256", sa.String(64)),
        sa.Column("inputs", sa.JSON),
        sa.Column("outputs", sa.JSON),
        sa.Column("summary", sa.JSON),
    )
    for column in ("created_at", "user", "version"):
        op.create_index(f"ix_predictions_{column}", "predictions", [column])


def downgrade() -> None:
    op.drop_table("predictions")
