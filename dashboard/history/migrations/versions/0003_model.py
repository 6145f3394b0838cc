"""model: the name of the model that answered (many models in one dashboard)

Revision ID: 0003
Revises: 0002

Rows recorded before have no name (NULL): they were answered by the dashboard's only model then, and the History
tab and API count them under the default model.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("model", sa.String(64)))
    op.create_index("ix_predictions_model", "predictions", ["model"])


def downgrade() -> None:
    op.drop_index("ix_predictions_model", "predictions")
    op.drop_column("predictions", "model")
