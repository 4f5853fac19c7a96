"""Watch alerts: one row per (campaign, target, video), so a match alerts once.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "watch_alerts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("video_id", BIG_ID, nullable=False),
        sa.Column("timestamp_s", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("channels", JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("digest_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_watch_alerts_video_id_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_alerts")),
        sa.UniqueConstraint(
            "campaign", "target", "video_id", name=op.f("uq_watch_alerts_campaign")
        ),
    )
    with op.batch_alter_table("watch_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watch_alerts_video_id"), ["video_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("watch_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watch_alerts_video_id"))
    op.drop_table("watch_alerts")
