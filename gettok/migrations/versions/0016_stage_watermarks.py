"""Stage watermarks: a daily start looks only at what became ready since the last one.

stage_watermarks: per campaign, stage and settings fingerprint, the time up to which every
input the stage could take has its outcome recorded, and when a pass last looked at every
member. The indexes on each input's time: a stage finds what was downloaded, transcribed,
framed or answered since its watermark by them, not by walking every member.

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


# What became ready since a watermark, each read from the index on its time; and the few
# answers a later run asks again, by status.
INDEXES = {
    "ix_downloads_updated_at": ("downloads", ["updated_at"]),
    "ix_videos_last_seen_at": ("videos", ["last_seen_at"]),
    "ix_transcripts_created_at": ("transcripts", ["created_at"]),
    "ix_frame_extractions_recorded_at": ("frame_extractions", ["recorded_at"]),
    "ix_annotations_created_at": ("annotations", ["created_at"]),
    "ix_annotations_status": ("annotations", ["status"]),
}


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
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
    op.drop_table("stage_watermarks")
