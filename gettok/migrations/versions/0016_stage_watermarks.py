"""Stage watermarks: a daily start looks only at what became ready since the last one.

stage_watermarks: per campaign, stage and settings fingerprint, the time up to which every
input the stage could take has its outcome recorded, and when a pass last looked at every
member. ix_downloads_updated_at: the downstream stages find what was downloaded since their
watermark by this index, not by walking every member's download.

Revision ID: 0016_watermarks
Revises: 0015_topics
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_watermarks"
down_revision: str | None = "0015_topics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stage_watermarks",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("mark", sa.DateTime(timezone=True), nullable=False),
        sa.Column("walked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_stage_watermarks_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "stage", "fingerprint", name="pk_stage_watermarks"),
    )
    op.create_index("ix_downloads_updated_at", "downloads", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_downloads_updated_at", table_name="downloads")
    op.drop_table("stage_watermarks")
