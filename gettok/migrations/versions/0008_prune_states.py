"""Prune: a `pruning` state (rows first, files second), when each video was last checked, and the
index the prune repair query needs.

Revision ID: 0008
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("compliance_checked_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("prune_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("files_removed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_prune_records_video_id", ["video_id"], unique=False)
    # Records written before this revision deleted their files first: they are finished.
    op.execute("UPDATE prune_records SET files_removed_at = pruned_at")


def downgrade() -> None:
    with op.batch_alter_table("prune_records", schema=None) as batch_op:
        batch_op.drop_index("ix_prune_records_video_id")
        batch_op.drop_column("files_removed_at")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("compliance_checked_at")
