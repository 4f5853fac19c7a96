"""Frames get their own status table; their failures leave `downloads.last_error`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PREFIX = "frames: "  # how the frames stage marked its failures in `downloads.last_error`


def upgrade() -> None:
    op.create_table(
        "frame_extractions",
        sa.Column("video_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "status",
            sa.Enum("ok", "failed", name="frame_status", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("settings_hash", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_frame_extractions_video_id_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("video_id", name=op.f("pk_frame_extractions")),
    )
    with op.batch_alter_table("frame_extractions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_frame_extractions_status"), ["status"], unique=False)
    # Failures recorded the old way move here (their settings unknown: tried once more).
    op.execute(
        sa.text(
            "INSERT INTO frame_extractions "
            "(video_id, status, reason, detail, frames, settings_hash, recorded_at) "
            "SELECT video_id, 'failed', 'before_0002', substr(last_error, :skip), 0, 'unknown', "
            "updated_at FROM downloads WHERE last_error LIKE :prefix"
        ).bindparams(skip=len(OLD_PREFIX) + 1, prefix=OLD_PREFIX + "%")
    )
    op.execute(
        sa.text("UPDATE downloads SET last_error = NULL WHERE last_error LIKE :prefix").bindparams(
            prefix=OLD_PREFIX + "%"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("frame_extractions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_frame_extractions_status"))
    op.drop_table("frame_extractions")
