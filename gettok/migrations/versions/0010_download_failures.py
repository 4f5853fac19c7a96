"""Downloads remember a failure that repeats (kind, since when, on how many runs).

A video that fails the same way on many runs over days ends `unreachable` instead of being asked
for forever. The new statuses (`age_restricted`, `unreachable`) need no DDL: the status column is
a plain string column (non-native enum without a CHECK constraint).

Revision ID: 0010
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("downloads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failure_kind", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("failed_runs", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("downloads", schema=None) as batch_op:
        batch_op.drop_column("failed_runs")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("failure_kind")
