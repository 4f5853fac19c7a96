"""Index annotations(frame_id): deleting a frame sets its annotations' `frame_id` to NULL, and
without an index every frame deleted scans the whole annotations table (5 s each at 500k videos).

Revision ID: 0009
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_annotations_frame_id", "annotations", ["frame_id"])


def downgrade() -> None:
    op.drop_index("ix_annotations_frame_id", table_name="annotations")
