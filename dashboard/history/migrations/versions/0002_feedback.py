"""feedback: "wrong answer" reports, each tied to the prediction it corrects

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prediction_id", sa.String(32), sa.ForeignKey("predictions.id"), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(320), nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("value", sa.Float),
        sa.Column("comment", sa.Text),
    )
    for column in ("prediction_id", "created_at", "user"):
        op.create_index(f"ix_feedback_{column}", "feedback", [column])


def downgrade() -> None:
    op.drop_table("feedback")
