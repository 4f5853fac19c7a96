"""Batch compliance: the tasks sent to the Research API, and what each check saw.

`compliance_tasks` keeps each task's ids and task id (a killed prune resumes polling it);
`videos.compliance_status` records what the last check saw (public, available, age_restricted);
`comments.compliance_checked_at` is the comments' 15-day clock. The new download status
`unavailable` needs no DDL (a plain string column).

Revision ID: 0013_compliance
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "0013_compliance"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "compliance_tasks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=True),
        sa.Column("item_ids", JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("unavailable", sa.Integer(), nullable=False),
        sa.Column("undecided", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_tasks")),
    )
    op.create_index("ix_compliance_tasks_state", "compliance_tasks", ["state"])
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("compliance_status", sa.String(length=32), nullable=True))
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("compliance_checked_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_column("compliance_checked_at")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("compliance_status")
    op.drop_index("ix_compliance_tasks_state", table_name="compliance_tasks")
    op.drop_table("compliance_tasks")
