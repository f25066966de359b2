"""at most one running session per period

Revision ID: 0005
Revises: 0004

Concurrent "start" requests could each insert a session for the same period; the period then had two
running sessions and could not be ended. A partial unique index makes the store refuse the second.
Sessions already duplicated are ended first: every running one but the newest of its period ends at
the moment it started (it was never the period's session for anyone: joins go to one of them only).
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE sessions SET ended_at = started_at WHERE ended_at IS NULL AND id NOT IN "
            "(SELECT newest FROM (SELECT MAX(id) AS newest FROM sessions WHERE ended_at IS NULL "
            "GROUP BY period_id) AS running)"
        )
    )
    op.create_index(
        "uq_sessions_one_running",
        "sessions",
        ["period_id"],
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_sessions_one_running", table_name="sessions")
