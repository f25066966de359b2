"""retention kind `assessments`

Revision ID: 0008
Revises: 0007

Quick polls and quizzes (the session's poll_* events) get their own retention period. `retention_policies.kind`
is the enum `record_kind`, stored as a plain VARCHAR(16) (native_enum=False, see liveclass/models.py `_enum`),
so on a store made by these migrations no schema change is needed: "assessments" fits. A store whose column
was made as PostgreSQL's native enum type `record_kind`, or with a CHECK constraint listing the kinds (other
SQLAlchemy defaults), gets the new value added here.
"""

from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KINDS = ("recordings", "chat", "attendance", "handouts", "assessments", "audit")


def _check_constraints(bind) -> list[str]:
    """Names of CHECK constraints on retention_policies that list the kinds (none on our own stores)."""
    inspector = sa.inspect(bind)
    try:
        checks = inspector.get_check_constraints("retention_policies")
    except NotImplementedError:
        return []
    return [
        c["name"]
        for c in checks
        if c.get("name") and "'audit'" in (c.get("sqltext") or "") and "'assessments'" not in (c.get("sqltext") or "")
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        native = bind.execute(sa.text("SELECT 1 FROM pg_type WHERE typname = 'record_kind'")).first()
        if native:
            # ADD VALUE cannot run inside a transaction block before PostgreSQL 12: outside it, always.
            with op.get_context().autocommit_block():
                op.execute("ALTER TYPE record_kind ADD VALUE IF NOT EXISTS 'assessments'")
    names = _check_constraints(bind)
    if names:
        allowed = ", ".join(f"'{k}'" for k in KINDS)
        with op.batch_alter_table("retention_policies", schema=None) as batch_op:
            for name in names:
                batch_op.drop_constraint(name, type_="check")
            batch_op.create_check_constraint(names[0], f"kind IN ({allowed})")


def downgrade() -> None:
    # The setting of the kind goes; a value added to a native enum type stays (PostgreSQL cannot drop one),
    # which is harmless: nothing refers to it any more.
    op.execute("DELETE FROM retention_policies WHERE kind = 'assessments'")
