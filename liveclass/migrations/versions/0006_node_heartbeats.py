"""node heartbeats in the store

Revision ID: 0006
Revises: 0005

Each node writes its heartbeat here every few seconds. After a crash (kill -9, power loss) the node that
starts again closes the attendance its sessions left open at its last heartbeat, not at the restart.
"""

from alembic import op
import sqlalchemy as sa

import liveclass.models


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_heartbeats",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", liveclass.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", liveclass.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )


def downgrade() -> None:
    op.drop_table("node_heartbeats")
