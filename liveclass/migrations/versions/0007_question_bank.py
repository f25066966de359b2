"""question bank

Revision ID: 0007
Revises: 0006

The teachers' questions (liveclass/questions.py): single and multiple choice, true/false, short text and
number, with their correct answers, points, explanation and an optional image (a file named by its SHA-256
under the data directory), shared with the teachers of the same subject or not.
"""

import sqlalchemy as sa
from alembic import op

import liveclass.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("correct", sa.JSON(), nullable=True),
        sa.Column("tolerance", sa.Float(), nullable=True),
        sa.Column("points", sa.Float(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("image_type", sa.String(length=32), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", liveclass.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", liveclass.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.create_index("ix_questions_owner_id", ["owner_id"], unique=False)
        batch_op.create_index("ix_questions_subject_topic", ["subject", "topic"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.drop_index("ix_questions_subject_topic")
        batch_op.drop_index("ix_questions_owner_id")
    op.drop_table("questions")
