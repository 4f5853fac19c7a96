"""Stored topic models and every video's topic under them (the report at scale, issue 19).

topic_fits: a campaign's fitted topic model (pickled), its settings' fingerprint and provenance.
video_topics: a video's topic under a fit, and when it was assigned, so that a daily report
assigns only the videos that are new or changed instead of the whole campaign again.

Revision ID: 0015_topics
Revises: 0014_keyset
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_topics"
down_revision: str | None = "0014_keyset"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "topic_fits",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("provenance", JSON_TYPE, nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_topic_fits_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_topic_fits"),
    )
    op.create_index("ix_topic_fits_campaign_id", "topic_fits", ["campaign_id"])
    op.create_table(
        "video_topics",
        sa.Column("fit_id", BIG_ID, nullable=False),
        sa.Column("video_id", BIG_ID, nullable=False),
        sa.Column("topic", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fit_id"],
            ["topic_fits.id"],
            name="fk_video_topics_fit_id_topic_fits",
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name="fk_video_topics_video_id_videos",
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("fit_id", "video_id", name="pk_video_topics"),
    )
    op.create_index("ix_video_topics_video_id", "video_topics", ["video_id"])


def downgrade() -> None:
    op.drop_index("ix_video_topics_video_id", table_name="video_topics")
    op.drop_table("video_topics")
    op.drop_index("ix_topic_fits_campaign_id", table_name="topic_fits")
    op.drop_table("topic_fits")
